// Tessera's small progressive enhancements; every page works without them.
(function () {
  "use strict";
  var csrf = document.body.getAttribute("data-csrf");

  // htmx requests carry the session's CSRF token
  document.body.addEventListener("htmx:configRequest", function (event) {
    if (csrf) { event.detail.headers["X-CSRF-Token"] = csrf; }
  });

  // forms that destroy data ask first
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (!question) { return; }
    if (form.querySelector('input[name="ids"]') && !form.querySelector('input[name="ids"]:checked')) {
      event.preventDefault();
      window.alert("Select at least one record first.");
      return;
    }
    if (!window.confirm(question)) { event.preventDefault(); }
  });

  // kanban: drag a card to another column; the server decides, a refused move snaps back
  var board = document.querySelector("[data-kanban]");
  if (board) { kanban(board); }

  function kanban(board) {
    var status = document.getElementById("kanban-status");
    var dragged = null;
    function say(message, ok) {
      status.hidden = false;
      status.textContent = message;
      status.className = "alert " + (ok ? "success" : "error");
    }
    board.addEventListener("dragstart", function (event) {
      var card = event.target.closest && event.target.closest(".kanban-card");
      if (!card || card.getAttribute("draggable") !== "true") { return; }
      dragged = card;
      card.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", card.getAttribute("data-id"));
    });
    board.addEventListener("dragend", function () {
      if (dragged) { dragged.classList.remove("dragging"); }
      board.querySelectorAll(".drop-target").forEach(function (c) { c.classList.remove("drop-target"); });
    });
    board.addEventListener("dragover", function (event) {
      var column = event.target.closest && event.target.closest(".kanban-column");
      if (!column || !dragged) { return; }
      event.preventDefault();
      board.querySelectorAll(".drop-target").forEach(function (c) { c.classList.remove("drop-target"); });
      column.classList.add("drop-target");
    });
    board.addEventListener("drop", function (event) {
      var column = event.target.closest && event.target.closest(".kanban-column");
      if (!column || !dragged) { return; }
      event.preventDefault();
      column.classList.remove("drop-target");
      var card = dragged;
      var home = card.parentNode;
      var next = card.nextSibling;
      if (column.contains(card)) { return; }
      column.querySelector(".kanban-cards").appendChild(card);
      var body = new URLSearchParams();
      body.set("field", board.getAttribute("data-field"));
      body.set("to", column.getAttribute("data-value"));
      body.set("version", card.getAttribute("data-version"));
      fetch(board.getAttribute("data-move-url") + "/" + card.getAttribute("data-id") + "/move", {
        method: "POST",
        headers: { "Accept": "application/json", "X-CSRF-Token": csrf || "" },
        body: body,
        credentials: "same-origin"
      }).then(function (response) {
        return response.json().catch(function () { return { ok: false, message: "The server did not answer." }; });
      }).then(function (answer) {
        if (answer.ok) {
          card.setAttribute("data-version", answer.version);
          var select = card.querySelector("select[name=to]");
          if (select) { select.value = column.getAttribute("data-value"); }
          say("Moved to " + (column.getAttribute("data-value") || "(empty)") + ".", true);
        } else {
          home.insertBefore(card, next);
          say("Not moved: " + answer.message, false);
        }
      }, function () {
        home.insertBefore(card, next);
        say("Not moved: the server could not be reached.", false);
      });
    });
  }

  // child tables: add a line from the table's template, remove a line not saved yet
  document.querySelectorAll("[data-add-line]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var name = button.getAttribute("data-add-line");
      var body = document.querySelector('table[data-lines="' + name + '"] tbody');
      var template = document.getElementById("tpl-" + name);
      var next = 0;
      body.querySelectorAll("[name]").forEach(function (input) {
        var found = input.name.match(/\[(\d+)\]/);
        if (found) { next = Math.max(next, Number(found[1]) + 1); }
      });
      var html = template.innerHTML.split("__INDEX__").join(String(next))
        .split("__NUMBER__").join(String(next + 1));
      body.insertAdjacentHTML("beforeend", html);
      var row = body.lastElementChild;
      row.querySelectorAll("[data-remove-line]").forEach(function (b) { b.hidden = false; });
      if (window.htmx) { window.htmx.process(row); }
      var first = row.querySelector("input:not([type=hidden]), select");
      if (first) { first.focus(); }
    });
  });
  document.querySelectorAll("[data-remove-line]").forEach(function (b) { b.hidden = false; });
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-remove-line]");
    if (button) { button.closest("tr").remove(); }
  });

  // visible_if and required_if: the server judges the values typed so far
  var conditional = document.querySelector("form[data-conditions]");
  if (conditional) { liveConditions(conditional); }

  function liveConditions(form) {
    var timer = null;
    function ask() {
      fetch(form.getAttribute("data-conditions"), {
        method: "POST",
        headers: { "Accept": "application/json", "X-CSRF-Token": csrf || "" },
        body: new FormData(form),
        credentials: "same-origin"
      }).then(function (response) { return response.ok ? response.json() : null; })
        .then(function (state) { if (state) { apply(state); } }, function () {});
    }
    function apply(state) {
      form.querySelectorAll("[data-section]").forEach(function (section) {
        section.hidden = state.hidden_sections.indexOf(section.getAttribute("data-section")) >= 0;
      });
      form.querySelectorAll(".field[data-field]").forEach(function (field) {
        var name = field.getAttribute("data-field");
        field.hidden = state.hidden_fields.indexOf(name) >= 0;
        var marker = field.querySelector("label .req");
        var input = field.querySelector("#f-" + name);
        if (!marker || !input || field.getAttribute("data-required") === "always") { return; }
        var required = state.required.indexOf(name) >= 0;
        marker.hidden = !required;
        if (required) { input.setAttribute("aria-required", "true"); } else { input.removeAttribute("aria-required"); }
      });
      // a child table's cells whose field has required_if: lines[0].reason
      form.querySelectorAll("td[data-required-if]").forEach(function (cell) {
        var required = state.required.indexOf(cell.getAttribute("data-required-if")) >= 0;
        var marker = cell.querySelector(".req");
        var input = cell.querySelector("input:not([type=hidden]), select, textarea");
        if (marker) { marker.hidden = !required; }
        if (!input) { return; }
        if (required) { input.setAttribute("aria-required", "true"); } else { input.removeAttribute("aria-required"); }
      });
    }
    function soon() { clearTimeout(timer); timer = setTimeout(ask, 250); }
    form.addEventListener("input", soon);
    form.addEventListener("change", soon);
  }

  // a report's Print button (no inline script: the page's policy allows none)
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });

  // after a refused save, take keyboard and screen-reader users to the error summary
  var summary = document.getElementById("form-errors");
  if (summary) { summary.focus(); }
})();

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

  // after a refused save, take keyboard and screen-reader users to the error summary
  var summary = document.getElementById("form-errors");
  if (summary) { summary.focus(); }
})();

"""An assert's ``status`` (409 or 422) when loading: what it may be, and where."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import pytest

from metadata import DefinitionError, load_project

if TYPE_CHECKING:
    from pathlib import Path

ENTITY = "document: true\nfields:\n  paid: {type: decimal}\n"


def load(tmp_path: Path, rules: str) -> tuple[list[str], list[int]]:
    files = {
        "packs/books/module.yaml": 'name: books\nversion: "1.0.0"\n',
        "packs/books/entities/invoice.yaml": ENTITY,
        "packs/books/rules/invoice.yaml": textwrap.dedent(rules),
    }
    for relative, text in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    try:
        project = load_project(["books"], [tmp_path / "packs"])
    except DefinitionError as error:
        return [str(p) for p in error.problems], []
    rules_of = project.entity("books.invoice").rules
    return [], [rule.status for rule in rules_of]


def test_an_assert_may_be_a_conflict(tmp_path: Path) -> None:
    problems, statuses = load(
        tmp_path,
        """\
        - name: not_while_paid
          on: [cancel]
          assert: "paid == 0"
          code: payments_allocated
          status: 409
        - name: positive
          assert: "paid >= 0"
        """,
    )
    assert problems == []
    assert statuses == [409, 422]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            "- name: x\n  status: 409\n  actions: [{update: {values: {paid: 0}}}]\n",
            "rules/invoice.yaml:2:3: 'status' is the status of a failed 'assert'",
        ),
        ("- name: x\n  assert: 'true'\n  status: 500\n", "rules/invoice.yaml:3:11:"),
        ("- name: x\n  assert: 'true'\n  status: '409'\n", "rules/invoice.yaml:3:11:"),
    ],
)
def test_status_is_409_or_422_of_an_assert(tmp_path: Path, rule: str, message: str) -> None:
    problems, _ = load(tmp_path, rule)
    assert any(message in p for p in problems), problems

"""Workflows (SPEC §3.4) as definitions: ``workflows/<entity>.yaml`` becomes a
``WorkflowDef``; every mistake is reported at its file:line:col."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from metadata import DefinitionError, load_project

ENTITY = "packs/support/entities/ticket.yaml"
WORKFLOW = "packs/support/workflows/ticket.yaml"
PACK = {
    "packs/support/module.yaml": 'name: support\nversion: "1.0.0"\n',
    ENTITY: """\
        fields:
          subject: {type: string}
          status: {type: enum, values: [new, open, resolved, closed], default: new}
          resolution: {type: text}
        """,
}


@pytest.fixture(autouse=True)
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(PACK)


def write(files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = Path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def load() -> object:
    return load_project(["support"], [Path("packs")])


def problems() -> list[str]:
    with pytest.raises(DefinitionError) as raised:
        load()
    return [str(p) for p in raised.value.problems]


def test_a_workflow_loads_with_its_initial_state_from_the_default() -> None:
    write(
        {
            WORKFLOW: """\
                field: status
                transitions:
                  - {from: new, to: open}
                  - {from: [open], to: resolved, roles: [agent], when: "resolution", label: Solve}
                """
        }
    )
    workflow = load_project(["support"], [Path("packs")]).entity("support.ticket").workflow
    assert workflow is not None
    assert (workflow.field, workflow.initial, workflow.origin) == ("status", "new", WORKFLOW)
    solve = workflow.transitions[1]
    assert (solve.sources, solve.target, solve.roles) == ({"open"}, "resolved", {"agent"})
    assert (solve.when, solve.label) == ("resolution", "Solve")
    assert [t.target for t in workflow.moves_from("new")] == ["open"]


def test_mistakes_are_reported_at_their_place() -> None:
    write(
        {
            WORKFLOW: """\
                field: status
                initial: nwe
                transitions:
                  - {from: new, to: open}
                  - {from: [open, resolvd], to: closd}
                  - {from: new, to: open}
                  - {from: open, to: open}
                  - {from: open, to: resolved, when: "resoluton"}
                  - {from: open, to: closed, when: "resolution and"}
                """
        }
    )
    assert problems() == [
        f"{WORKFLOW}:2:10: 'nwe' is not a value of the workflow's field; did you mean 'new'?",
        f"{WORKFLOW}:5:19: 'resolvd' is not a value of the workflow's field; "
        "did you mean 'resolved'?",
        f"{WORKFLOW}:5:33: 'closd' is not a value of the workflow's field; did you mean 'closed'?",
        f"{WORKFLOW}:6:21: 'new' -> 'open' is already allowed by transition 1",
        f"{WORKFLOW}:7:22: a move from 'open' to itself changes nothing",
        f"{WORKFLOW}:8:38: unknown name 'resoluton' in expression; did you mean 'resolution'?",
        f"{WORKFLOW}:9:36: expression does not parse: unexpected 'end of template'",
    ]


def test_the_field_must_be_an_enum_of_the_entity() -> None:
    write({WORKFLOW: "field: subject\ntransitions: [{from: a, to: b}]\n"})
    assert problems() == [f"{WORKFLOW}:1:8: a workflow's field must be an enum; 'subject' is not"]
    write({WORKFLOW: "field: stauts\ntransitions: [{from: a, to: b}]\n"})
    assert problems() == [
        f"{WORKFLOW}:1:8: 'stauts' is not a field of this entity; did you mean 'status'?"
    ]


def test_a_workflow_file_needs_an_entity_and_a_valid_shape() -> None:
    write(
        {
            "packs/support/workflows/tikcet.yaml": "field: status\ntransitions: []\n",
            WORKFLOW: "field: status\ntransitions: [{from: new}]\n",
        }
    )
    found = problems()
    assert any("tikcet.yaml" in p and "did you mean 'ticket'" in p for p in found), found
    assert any(p.startswith(f"{WORKFLOW}:2:15:") and "'to'" in p for p in found), found

"""Assignment rules (``assign:``) as definitions: a correct one loads into the rule's
``AssignDef``; every mistake is reported at its file:line:col."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from metadata import AssignStrategy, DefinitionError, RuleEvent, load_project

PACK = {
    "packs/desk/module.yaml": 'name: desk\nversion: "1.0.0"\n',
    "packs/desk/roles.yaml": "roles:\n  agent:\n    grants: [{entity: ticket, actions: [read]}]\n",
    "packs/desk/entities/employee.yaml": """\
        fields:
          name: {type: string}
          active: {type: boolean}
        """,
    "packs/desk/entities/ticket.yaml": """\
        fields:
          title: {type: string}
          status: {type: enum, values: [open, closed], default: open}
          owner: {type: user}
          agent: {type: reference, to: employee}
        """,
}
RULES = "packs/desk/rules/ticket.yaml"


@pytest.fixture(autouse=True)
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(PACK)


def write(files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = Path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def problems() -> list[str]:
    with pytest.raises(DefinitionError) as raised:
        load_project(["desk"], [Path("packs")])
    return [str(p) for p in raised.value.problems]


def test_a_correct_assignment_loads() -> None:
    write(
        {
            RULES: """\
                - name: to_agents
                  when: "status == 'open'"
                  assign: {field: owner, strategy: round_robin, candidates: {role: agent}}
                - name: to_staff
                  on: [create, update]
                  assign:
                    field: agent
                    strategy: least_load
                    candidates: {records: "active"}
                    load: "status == 'open'"
                """
        }
    )
    project = load_project(["desk"], [Path("packs")])
    first, second = project.entities["desk.ticket"].rules
    assert first.assign is not None
    assert first.assign.role == "agent"
    assert first.assign.strategy is AssignStrategy.ROUND_ROBIN
    assert first.events == frozenset({RuleEvent.CREATE})
    assert second.assign is not None
    assert second.assign.records == "active"
    assert second.events == frozenset({RuleEvent.CREATE, RuleEvent.UPDATE})


def test_each_mistake_is_reported_at_its_key() -> None:
    write(
        {
            RULES: """\
                - name: typo
                  assign: {field: ownr, strategy: round_robin, candidates: {users: [ann]}}
                - name: no_select
                  assign: {field: owner, strategy: first, candidates: {users: [ann, ann]}}
                - name: bad_select
                  on: delete
                  assign:
                    field: owner
                    strategy: first
                    select: "candidate.region == regio"
                    candidates: {role: agent}
                    load: "status == 'open'"
                - name: users_into_reference
                  assign: {field: agent, strategy: round_robin, candidates: {role: agnt}}
                - name: records_into_user
                  assign: {field: owner, strategy: round_robin, candidates: {records: "true"}}
                - name: bad_where
                  assign:
                    field: agent
                    strategy: least_load
                    candidates: {records: "nam.upper() == 'X'"}
                    load: "statu == 'open'"
                - name: with_assert
                  assert: "true"
                  assign: {field: owner, strategy: round_robin, candidates: {role: agent}}
                - name: two_kinds
                  assign: {field: owner, strategy: round_robin, candidates: {role: a, users: [b]}}
                """
        }
    )
    assert problems() == [
        f"{RULES}:2:19: field 'ownr' is not a field; did you mean 'owner'?",
        f"{RULES}:4:36: strategy 'first' needs 'select', the expression a candidate must satisfy",
        f"{RULES}:4:69: user 'ann' is listed twice",
        f"{RULES}:6:7: an assignment runs on create or update, not on delete",
        f"{RULES}:10:13: unknown name 'regio' in expression",
        f"{RULES}:12:11: 'load' belongs to strategy 'least_load'",
        f"{RULES}:14:19: candidates 'users' and 'role' are users: 'agent' must be a user field"
        " (it is a reference field)",
        f"{RULES}:14:68: role 'agnt' is not declared in any roles.yaml; did you mean 'agent'?",
        f"{RULES}:16:19: candidates 'records' are records of the entity a reference field"
        " points at; 'owner' is a user field",
        f"{RULES}:21:27: each comparison needs a field of the record on one side"
        " (a where over desk.employee, as in roles.yaml)",
        f"{RULES}:22:11: 'statu' is not a field of desk.ticket; did you mean 'status'?"
        " (a where over desk.ticket, as in roles.yaml)",
        f"{RULES}:24:11: an assignment rule has no 'assert': make that a rule of its own",
        f"{RULES}:27:61: 7.assign.candidates: {{'role': 'a', 'users': ['b']}} has too many"
        " properties",
    ]

"""A ``create`` that finds before it creates (``match``) and stores the id of its record in
the record written (``set``): what loads, and every mistake at its file:line:col."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from metadata import CreateAction, DefinitionError, load_project

PACK = {
    "packs/crm/module.yaml": 'name: crm\nversion: "1.0.0"\n',
    "packs/crm/entities/company.yaml": """\
        fields:
          name: {type: string, required: true, unique: true}
          notes: {type: json}
        """,
    "packs/crm/entities/lead.yaml": """\
        fields:
          company: {type: string}
          status: {type: enum, values: [new, converted], default: new}
          account: {type: reference, to: company, read_only: true}
          other: {type: reference, to: lead}
          lines: {type: children, entity: lead_line}
        """,
    "packs/crm/entities/lead_line.yaml": "fields:\n  note: {type: string}\n",
}
RULES = "packs/crm/rules/lead.yaml"


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
        load_project(["crm"], [Path("packs")])
    return [str(p) for p in raised.value.problems]


def test_match_and_set_load_and_are_described() -> None:
    write(
        {
            RULES: """\
                - name: convert
                  on: update
                  when: "changed('status') and status == 'converted'"
                  actions:
                    - create:
                        entity: company
                        match: {name: "{{ company }}"}
                        values: {name: "{{ company }}"}
                        set: account
                    - update: {values: {company: "{{ account }}"}}
                """
        }
    )
    project = load_project(["crm"], [Path("packs")])
    (rule,) = project.entities["crm.lead"].rules
    action = rule.actions[0]
    assert isinstance(action, CreateAction)
    assert action.reads_back
    assert action.describe() == {
        "create": {
            "entity": "crm.company",
            "values": {"name": "{{ company }}"},
            "match": {"name": "{{ company }}"},
            "set": "account",
        }
    }


def test_mistakes_are_reported_at_their_keys() -> None:
    write(
        {
            RULES: """\
                - name: convert
                  on: update
                  actions:
                    - create:
                        entity: company
                        match: {nme: "{{ company }}", notes: "x"}
                        values: {name: "{{ company }}"}
                        set: acount
                    - create: {entity: company, values: {name: x}, set: other}
                    - create: {entity: company, values: {name: x}, set: status}
                    - create: {entity: company, values: {name: x}, match: {name: x}}
                      async: true
                    - for_each: lines
                      create: {entity: company, values: {name: x}, set: account}
                    - create: {entity: company, values: {name: x}, match: {name: "{{ nam }}"}}
                """
        }
    )
    assert problems() == [
        f"{RULES}:6:17: 'nme' is not a field of crm.company; did you mean 'name'?",
        f"{RULES}:6:39: field 'notes' (json) of crm.company cannot select records",
        f"{RULES}:8:14: 'acount' is not a field of crm.lead; did you mean 'account'?",
        f"{RULES}:9:57: field 'other' of crm.lead is not a reference to crm.company: 'set' "
        "stores the id of the record created there",
        f"{RULES}:10:57: field 'status' of crm.lead is not a reference to crm.company: "
        "'set' stores the id of the record created there",
        f"{RULES}:11:52: 'match' needs the record in the write's transaction: drop 'async'",
        f"{RULES}:13:7: a create with 'set' fills one field of the record: drop 'for_each'",
        f"{RULES}:15:66: unknown name 'nam' in template",
    ]

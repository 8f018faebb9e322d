"""The registry of rule actions is the only list of them: an action kind declared in this
test module alone (its definition, its schema, its handler) is checked at load time,
published in the rules schema, run by a rule on a write and described by the API, without
any other file knowing of it; on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import pytest

from engine.effects import handles
from engine.expressions import ValueTemplate
from metadata import ActionDef, DefinitionError, action_kind, load_project, schema_document
from tests.conftest import Instance, write_instance

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from pathlib import Path

    from fastapi.testclient import TestClient

    from engine.effects import ActionRun
    from engine.expressions import Scope
    from metadata import ActionChecker
    from metadata._errors import PathItem


@action_kind
@dataclass(frozen=True, slots=True, kw_only=True)
class StampAction(ActionDef):
    """``stamp: {field: <field>, text: <template>}``: write ``text`` into a field of the
    record written."""

    kind: ClassVar[str] = "stamp"
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["field", "text"],
        "properties": {"field": {"type": "string"}, "text": {"type": "string"}},
    }
    field: str
    text: str

    @classmethod
    def parse(
        cls, body: Any, checker: ActionChecker, where: tuple[PathItem, ...], *, deferred: bool
    ) -> ActionDef | None:
        if not checker.templates_ok(where, {"text": body["text"]}):
            return None
        return cls(field=body["field"], text=body["text"])

    def templates(self) -> Iterator[str]:
        return iter([self.text])

    def describe(self) -> dict[str, Any]:
        return {self.kind: {"field": self.field, "text": self.text}}


@handles(StampAction)
class StampHandler:
    def __init__(self, action: StampAction) -> None:
        self.field = action.field
        self.text = ValueTemplate(action.text)

    def resolve(self, scope: Scope) -> Any:
        return self.text.resolve(scope)

    async def run(self, run: ActionRun, resolved: Any) -> bool:
        await run.store.update(run.conn, run.record_id, {self.field: resolved}, run.nested)
        return True


ENTITY = """\
fields:
  title: {type: string, required: true}
  stamp: {type: string}
"""
RULES = """\
- name: stamp_new_tickets
  on: create
  actions:
    - stamp: {field: stamp, text: "T-{{ title | upper }}-{{ id }}"}
"""


def _pack(root: Path, rules: str) -> Path:
    pack = root / "packs" / "desk"
    for relative, text in {
        "module.yaml": "name: desk\nversion: 1.0.0\n",
        "entities/ticket.yaml": ENTITY,
        "rules/ticket.yaml": rules,
    }.items():
        (pack / relative).parent.mkdir(parents=True, exist_ok=True)
        (pack / relative).write_text(text)
    return root / "packs"


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    packs = _pack(tmp_path, RULES)
    instance: Instance = write_instance(tmp_path / "acme", db_url, ["desk"], [packs])
    instance.migrate()
    with instance.client() as client:
        yield client


def test_a_registered_action_kind_runs_through_a_rule(client: TestClient) -> None:
    created = client.post("/api/v1/desk/ticket", json={"title": "printer"})
    assert created.status_code == 201, created.text
    ticket = created.json()["data"]
    assert ticket["stamp"] == f"T-PRINTER-{ticket['id']}"  # the record as the action left it
    stored = client.get(f"/api/v1/desk/ticket/{ticket['id']}").json()["data"]
    assert stored["stamp"] == ticket["stamp"]
    meta = client.get("/api/v1/_meta/entities")
    assert meta.status_code == 200, meta.text
    (entity,) = [e for e in meta.json()["data"] if e["name"] == "desk.ticket"]
    (rule,) = entity["rules"]  # the rule's action as the API describes it
    assert rule["actions"] == [
        {"stamp": {"field": "stamp", "text": "T-{{ title | upper }}-{{ id }}"}}
    ]


def test_the_rules_schema_lists_the_registered_kinds() -> None:
    properties = schema_document("rules")["$defs"]["action"]["properties"]
    assert properties["stamp"] == dict(StampAction.schema)
    assert {"create", "update", "email", "webhook", "async"} <= set(properties)


def test_a_registered_kind_is_checked_at_load_time(tmp_path: Path) -> None:
    broken = RULES.replace('text: "T-{{ title | upper }}-{{ id }}"', 'text: "{{ nope }}"')
    with pytest.raises(DefinitionError) as raised:
        load_project(["desk"], [_pack(tmp_path / "a", broken)])
    assert any("nope" in problem.message for problem in raised.value.problems)

    unknown_key = RULES.replace("field: stamp,", "field: stamp, colour: red,")
    with pytest.raises(DefinitionError) as raised:
        load_project(["desk"], [_pack(tmp_path / "b", unknown_key)])
    assert any("colour" in problem.message for problem in raised.value.problems)

"""Views (``views/<entity>.yaml``) load with their entity; each name is checked against
the entity's fields and reported at its key (file:line:col)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from metadata import DefinitionError, load_project

PACK = {
    "packs/sales/module.yaml": 'name: sales\nversion: "1.0.0"\n',
    "packs/sales/entities/deal.yaml": """\
        fields:
          name: {type: string}
          amount: {type: decimal}
          stage: {type: enum, values: [open, won]}
          notes: {type: text}
          lines: {type: children, entity: line}
        """,
    "packs/sales/entities/line.yaml": "fields:\n  qty: {type: integer}\n",
}
VIEW = "packs/sales/views/deal.yaml"


@pytest.fixture(autouse=True)
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for relative, text in PACK.items():
        path = Path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def write_view(text: str) -> None:
    path = Path(VIEW)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_a_view_loads_with_its_entity() -> None:
    write_view(
        """\
        list:
          columns: [name, stage, amount, created_at]
          sort: -amount,name
        kanban: {group_by: stage, card: [amount]}
        """
    )
    view = load_project(["sales"], [Path("packs")]).entity("sales.deal").view
    assert view.list_columns == ("name", "stage", "amount", "created_at")
    assert view.list_sort == "-amount,name"
    assert (view.kanban_group_by, view.kanban_card) == ("stage", ("amount",))


def test_each_mistake_is_reported_at_its_key() -> None:
    write_view(
        """\
        list:
          columns: [name, nmae, lines, name]
          sort: -amout
        kanban: {group_by: notes, card: [stge]}
        """
    )
    with pytest.raises(DefinitionError) as raised:
        load_project(["sales"], [Path("packs")])
    assert [str(p) for p in raised.value.problems] == [
        f"{VIEW}:2:19: sales.deal has no field 'nmae'; did you mean 'name'?",
        f"{VIEW}:2:25: 'lines' is a children field: it has no list column",
        f"{VIEW}:2:32: 'name' is listed twice",
        f"{VIEW}:3:9: cannot sort by 'amout': sales.deal has no such field; did you mean 'amount'?",
        f"{VIEW}:4:20: a board groups by an enum field; 'notes' is not one of sales.deal's enum "
        "fields",
        f"{VIEW}:4:34: sales.deal has no field 'stge'; did you mean 'stage'?",
    ]

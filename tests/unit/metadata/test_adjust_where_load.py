"""``adjust`` with ``where`` as a definition: the record adjusted may be selected by field
values (``_parent`` on a line entity) instead of, or besides, its id; mistakes are reported
at their file:line:col."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from metadata import AdjustAction, DefinitionError, load_project

BASE = {
    "packs/shop/module.yaml": 'name: shop\nversion: "1.0.0"\n',
    "packs/shop/entities/bin.yaml": """\
        balance: {key: [item]}
        fields:
          item: {type: string}
          qty: {type: decimal}
        """,
    "packs/shop/entities/order.yaml": """\
        document: true
        fields:
          lines: {type: children, entity: order_line}
        """,
    "packs/shop/entities/order_line.yaml": """\
        fields:
          item: {type: string}
          done: {type: decimal}
          notes: {type: json}
        """,
    "packs/shop/entities/shipment.yaml": """\
        document: true
        fields:
          order: {type: reference, to: order}
          total: {type: decimal}
          lines: {type: children, entity: shipment_line}
        """,
    "packs/shop/entities/shipment_line.yaml": """\
        fields:
          item: {type: string}
          qty: {type: decimal}
          order_line: {type: reference, to: order_line}
        """,
}


@pytest.fixture(autouse=True)
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def load(adjust: str) -> tuple[list[str], object]:
    body = textwrap.indent(textwrap.dedent(adjust), " " * 10)
    rules = (
        "- name: ship\n  on: [submit]\n  actions:\n    - for_each: lines\n      adjust:\n" + body
    )
    files = {**BASE, "packs/shop/rules/shipment.yaml": rules}
    for relative, text in files.items():
        path = Path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    try:
        project = load_project(["shop"], [Path("packs")])
    except DefinitionError as error:
        return [str(p) for p in error.problems], None
    return [], project


def test_where_selects_a_line_by_its_parent_and_fields() -> None:
    problems, project = load("""\
        entity: order_line
        id: "{{ line.order_line or '' }}"
        where: {_parent: "{{ order }}", item: "{{ line.item }}"}
        add: {done: "{{ line.qty }}"}
        """)
    assert problems == []
    rule = project.entities["shop.shipment"].rules[0]  # type: ignore[attr-defined]
    action = rule.actions[0]
    assert isinstance(action, AdjustAction)
    assert dict(action.where or {}) == {"_parent": "{{ order }}", "item": "{{ line.item }}"}
    assert action.describe()["adjust"]["where"] == dict(action.where or {})


@pytest.mark.parametrize(
    ("adjust", "message"),
    [
        (
            'entity: order_line\nwhere: {itme: "{{ line.item }}"}\nadd: {done: 1}\n',
            "'itme' is not a field of shop.order_line; did you mean 'item'?",
        ),
        (
            'entity: order_line\nwhere: {notes: "x"}\nadd: {done: 1}\n',
            "field 'notes' (json) of shop.order_line cannot select records",
        ),
        (
            'entity: shipment\nwhere: {_parent: "{{ order }}"}\nadd: {total: 1}\n',
            "'_parent' is not a field of shop.shipment",
        ),
        (
            'entity: bin\nwhere: {item: "{{ line.item }}"}\nadd: {qty: 1}\n',
            "shop.bin is a balance: name its row with 'key', not 'where'",
        ),
        (
            'entity: bin\nkey: {item: "a"}\nwhere: {item: "a"}\nadd: {qty: 1}\n',
            "give 'key' (a balance's row) or 'id' and/or 'where' (a record), not both",
        ),
        (
            'entity: order_line\nwhere: {_parent: "{{ ordr }}"}\nadd: {done: 1}\n',
            "unknown name 'ordr'",
        ),
    ],
)
def test_where_mistakes_are_reported(adjust: str, message: str) -> None:
    problems, _ = load(adjust)
    assert any(message in problem and "shipment.yaml:" in problem for problem in problems), problems

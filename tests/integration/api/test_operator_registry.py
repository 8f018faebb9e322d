"""The operator registry is the only list of filter operators: an operator defined and
registered here, in a test module, works in list filters (through a reference too),
aggregate filters, dashboards' and roles' ``where`` (SQL for lists, Python for single
reads and creates), and the OpenAPI text, on SQLite and PostgreSQL, without any other
change. Also: every operator of the vocabulary has exactly one engine class."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import and_, func

from engine.operators import (
    Arity,
    Operator,
    OperatorSpec,
    operator,
    register,
    registered,
    unimplemented,
)
from metadata import FILTER_OPERATORS, FieldType
from metadata._fieldkeys import TEXTUAL_TYPES
from tests.conftest import Instance, pack_instance
from tests.support.identity import bearer, issue_token

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from sqlalchemy import ColumnElement


@register
class EndsWith(Operator):
    spec = OperatorSpec("ends_with", Arity.ONE, "ends with the text", TEXTUAL_TYPES, value_type=str)

    def values(self, text: str, parse: Any, key: str) -> tuple[Any, ...]:
        return (text,)

    def sql(
        self, column: Any, operands: Sequence[Any], values: Sequence[Any]
    ) -> ColumnElement[bool]:
        tail = func.length(column) - func.length(operands[0]) + 1
        return and_(tail >= 1, func.substr(column, tail) == operands[0])

    def holds(self, actual: Any, expected: Any) -> bool:
        return isinstance(actual, str) and actual.endswith(expected)


@register
class LenGt(Operator):
    spec = OperatorSpec("len_gt", Arity.ONE, "longer than", frozenset({FieldType.STRING}))

    def values(self, text: str, parse: Any, key: str) -> tuple[Any, ...]:
        return (int(text),) if text.isascii() and text.isdigit() and len(text) < 6 else (-1,)

    def sql(
        self, column: Any, operands: Sequence[Any], values: Sequence[Any]
    ) -> ColumnElement[bool]:
        return func.length(column) > operands[0]  # type: ignore[no-any-return]

    def holds(self, actual: Any, expected: Any) -> bool:
        return isinstance(actual, str) and len(actual) > expected


FILES = {
    "module.yaml": "name: shop\nversion: 1.0.0\n",
    "entities/maker.yaml": "title: name\nfields:\n  name: {type: string, required: true}\n",
    "entities/item.yaml": """\
title: name
fields:
  name:  {type: string, required: true}
  qty:   {type: integer}
  maker: {type: reference, to: maker}
""",
    "roles.yaml": """\
roles:
  tail_reader:
    grants:
      - {entity: item, actions: [read, create], where: "name is ends_with('-x') and qty > 0"}
      - {entity: maker, actions: [read]}
""",
    "dashboards/main.yaml": """\
tiles:
  - {label: X items, entity: item, type: number, filter: {name__ends_with: "-x"}}
""",
}


@pytest.fixture
def shop(db_url: str, tmp_path: Path) -> Instance:
    return pack_instance(tmp_path, db_url, "shop", FILES)


def test_every_operator_has_one_engine_class() -> None:
    assert unimplemented() == frozenset()
    assert registered() == frozenset(FILTER_OPERATORS)
    assert {"ends_with", "len_gt"} <= registered()
    assert isinstance(operator("ends_with"), EndsWith)
    with pytest.raises(ValueError, match="registered already"):

        @register
        class Impostor(EndsWith):
            spec = OperatorSpec("ends_with", Arity.MANY, "twice")


def test_a_test_module_operator_works_everywhere(shop: Instance) -> None:
    with shop.client() as api:
        maker = api.post("/api/v1/shop/maker", json={"name": "Acme-x"}).json()["data"]["id"]
        for name, qty in (("bolt-x", 3), ("nut-y", 5), ("washer-x", 0), ("long-screw-x", 2)):
            made = api.post("/api/v1/shop/item", json={"name": name, "qty": qty, "maker": maker})
            assert made.status_code == 201, made.text
        names = lambda response: sorted(r["name"] for r in response.json()["data"])  # noqa: E731

        listed = api.get("/api/v1/shop/item", params={"name__ends_with": "-x"})
        assert listed.status_code == 200, listed.text
        assert names(listed) == ["bolt-x", "long-screw-x", "washer-x"]
        longer = api.get("/api/v1/shop/item", params={"name__len_gt": "6", "sort": "name"})
        assert names(longer) == ["long-screw-x", "washer-x"]
        through = api.get("/api/v1/shop/item", params={"maker__name__ends_with": "-x"})
        assert len(through.json()["data"]) == 4
        assert api.get("/api/v1/shop/item", params={"qty__ends_with": "3"}).status_code == 400
        wrong = api.get("/api/v1/shop/item", params={"name__ends_wiht": "x"})
        assert wrong.status_code == 400
        assert "did you mean 'ends_with'" in wrong.json()["detail"]

        counted = api.get(
            "/api/v1/shop/item/_aggregate", params={"name__ends_with": "-x", "measures": "qty__sum"}
        )
        assert counted.status_code == 200, counted.text
        assert counted.json()["data"] == [{"count": 3, "qty__sum": 5}]

        spec = api.get("/openapi.json").json()
        described = [
            p["description"]
            for p in spec["paths"]["/api/v1/shop/item"]["get"]["parameters"]
            if p["name"] == "name"
        ]
        assert "__ends_with," in described[0]
        assert "__len_gt." in described[0]

        reader = bearer(issue_token(shop.settings.database_url, "tails", ("tail_reader",)))
        mine = api.get("/api/v1/shop/item", headers=reader)
        assert names(mine) == ["bolt-x", "long-screw-x"]  # SQL of the where
        others = api.get("/api/v1/shop/item", params={"name": "nut-y"}).json()["data"]
        seen = api.get(f"/api/v1/shop/item/{others[0]['id']}", headers=reader)
        assert seen.status_code == 404  # the where judged in Python
        refused = api.post("/api/v1/shop/item", json={"name": "pin-y", "qty": 1}, headers=reader)
        assert refused.status_code == 403, refused.text
        allowed = api.post("/api/v1/shop/item", json={"name": "pin-x", "qty": 1}, headers=reader)
        assert allowed.status_code == 201, allowed.text
        mine_counted = api.get("/api/v1/shop/item/_aggregate", headers=reader)
        assert mine_counted.json()["data"] == [{"count": 3}]

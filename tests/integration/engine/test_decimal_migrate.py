"""Decimal columns through ``tessera migrate`` on SQLite and PostgreSQL: on SQLite a decimal
is a whole number of its smallest unit, so a change of scale rescales the values (exactly),
a decimal cannot become text in place, and a database written when SQLite held decimals as
doubles is converted once (system revision 0009)."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from tests.integration.engine.test_migrate import Evolving, settled, thing_with

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def evo(tmp_path: Path, db_url: str) -> Evolving:
    pack = Evolving(tmp_path / "packs", db_url)
    pack.migrate()
    pack.fill()
    return pack


def test_a_smaller_scale_rounds_half_away_from_zero(evo: Evolving) -> None:
    before = [evo.decimal(r["price"], 2) for r in evo.rows()]
    evo.write({"owner": OWNER_DEF, "thing": thing_with(price=_decimal(10, 1))})
    plan = evo.migrate()
    assert plan.refused
    assert "--allow-data-loss" in plan.reasons()[0]
    evo.migrate(allow_data_loss=True)
    after = [evo.decimal(r["price"], 1) for r in evo.rows()]
    assert after == [(p + Decimal("0.05")).quantize(Decimal("0.1"), "ROUND_DOWN") for p in before]
    assert after[0] == Decimal("1.3")
    evo.write({"owner": OWNER_DEF, "thing": thing_with(price=_decimal(18, 6))})
    assert not evo.migrate().refused
    assert [evo.decimal(r["price"], 6) for r in evo.rows()] == after
    settled(evo)


def test_a_decimal_becomes_text_only_on_postgresql(evo: Evolving) -> None:
    evo.write({"owner": OWNER_DEF, "thing": thing_with(price={"type": "text"})})
    plan = evo.migrate(allow_data_loss=True)
    if evo.db_url.startswith("sqlite"):
        assert plan.refused
        assert "SQLite keeps decimals as scaled integers" in plan.reasons()[0]
        assert evo.decimal(evo.rows()[0]["price"], 2) == Decimal("1.25")
    else:
        assert not plan.refused
        assert evo.rows()[0]["price"] == "1.25"


@pytest.mark.only_on("sqlite")  # PostgreSQL's numeric was always exact
def test_sqlite_doubles_are_converted_once(evo: Evolving) -> None:
    path = evo.db_url.split("///", 1)[1]
    with sqlite3.connect(path) as connection:  # as an older Tessera wrote them
        connection.execute("UPDATE evo_thing SET price = 12.25 WHERE id = 1")
        connection.execute("UPDATE evo_thing SET price = 7 WHERE id = 2")
        connection.execute("UPDATE evo_thing SET price = NULL WHERE id = 3")
        connection.execute("UPDATE evo_thing SET price = 4.25 WHERE id = 4")
        # at revision 0008: without what 0010 (files) and 0011 (user preferences) add
        connection.execute("UPDATE tessera_alembic_version SET version_num = '0008'")
        connection.execute("DROP TABLE tessera_file")
        connection.execute("ALTER TABLE tessera_user DROP COLUMN timezone")
        connection.execute("ALTER TABLE tessera_user DROP COLUMN locale")
    evo.migrate()
    evo.migrate()  # converted once only
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            "SELECT price, typeof(price) FROM evo_thing WHERE id <= 4 ORDER BY id"
        ).fetchall()
    assert rows == [(1225, "integer"), (700, "integer"), (None, "null"), (425, "integer")]


OWNER_DEF = {"fields": {"name": {"type": "string", "required": True, "unique": True}}}


def _decimal(precision: int, scale: int) -> dict[str, object]:
    return {"type": "decimal", "precision": precision, "scale": scale}

"""Schema evolution on tables that hold rows, on SQLite and PostgreSQL.

Each test defines a pack, migrates it, fills it, changes the definitions the way an admin
would, migrates again, and checks the rows: same count, same values, new schema.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from sqlalchemy import insert, inspect, select
from sqlalchemy.exc import IntegrityError

from engine.migrate import MigrationFailed, run_migration, sync_engine
from engine.tables import build_tables, migration_log_table
from metadata import load_project

if TYPE_CHECKING:
    from pathlib import Path

    from engine.migrate import Plan

OWNER = {"fields": {"name": {"type": "string", "required": True, "unique": True}}}
THING: dict[str, Any] = {
    "fields": {
        "name": {"type": "string", "required": True, "max_length": 50},
        "code": {"type": "string", "max_length": 20},
        "qty": {"type": "integer"},
        "price": {"type": "decimal", "precision": 10, "scale": 2},
        "notes": {"type": "text"},
        "owner": {"type": "reference", "to": "owner"},
    }
}
ROWS = 20


class Evolving:
    """A pack whose definitions a test rewrites between migrations."""

    def __init__(self, root: Path, db_url: str) -> None:
        self.root = root
        self.db_url = db_url
        self.version = 0
        self.write({"owner": OWNER, "thing": THING})

    def write(self, entities: dict[str, Any]) -> None:
        self.version += 1
        pack = self.root / "evo"
        (pack / "entities").mkdir(parents=True, exist_ok=True)
        for old in (pack / "entities").iterdir():
            old.unlink()
        (pack / "module.yaml").write_text(
            yaml.safe_dump({"name": "evo", "version": f"1.{self.version}.0"})
        )
        for name, definition in entities.items():
            (pack / "entities" / f"{name}.yaml").write_text(yaml.safe_dump(definition))

    def migrate(self, *, allow_data_loss: bool = False, dry_run: bool = False) -> Plan:
        project = load_project(["evo"], [self.root])
        return run_migration(
            self.db_url,
            build_tables(project),
            allow_data_loss=allow_data_loss,
            dry_run=dry_run,
            applied_by="tests",
            definitions_hash=f"v{self.version}",
        )

    def fill(self) -> None:
        project = load_project(["evo"], [self.root])
        tables = build_tables(project).tables
        now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        stamps = {"created_at": now, "updated_at": now}
        engine = sync_engine(self.db_url)
        with engine.begin() as connection:
            connection.execute(
                insert(tables["evo.owner"]),
                [{"id": i, "name": f"Owner {i}", **stamps} for i in (1, 2, 3)],
            )
            connection.execute(
                insert(tables["evo.thing"]),
                [
                    {
                        "id": i,
                        "name": f"Thing {i} — ünïcødé" if i % 2 else f"T{i}",
                        "code": f"{i:03d}",
                        "qty": i * 10 if i % 5 else None,
                        "price": self.stored(Decimal(f"{i}.25"), 2),
                        "notes": None if i % 3 else f"note {i}",
                        "owner": (i % 3) + 1 if i % 4 else None,
                        **stamps,
                    }
                    for i in range(1, ROWS + 1)
                ],
            )
        engine.dispose()

    def stored(self, value: Decimal, scale: int) -> Any:
        """A decimal as the engine writes it: on SQLite, a whole number of its smallest unit
        (``engine.fieldtypes.numeric.scaled_integer``)."""
        return int(value.scaleb(scale)) if self.db_url.startswith("sqlite") else value

    def decimal(self, raw: Any, scale: int) -> Decimal:
        """The decimal of a raw column value (``stored`` undone)."""
        if self.db_url.startswith("sqlite"):
            return Decimal(int(raw)).scaleb(-scale)
        return Decimal(str(raw))

    def rows(self, table: str = "evo_thing") -> list[dict[str, Any]]:
        engine = sync_engine(self.db_url)
        with engine.connect() as connection:
            reflected = inspect(connection)
            names = [c["name"] for c in reflected.get_columns(table)]
            from sqlalchemy import column
            from sqlalchemy import table as table_clause

            query = select(*(column(n) for n in names)).select_from(table_clause(table))
            result = [dict(row._mapping) for row in connection.execute(query.order_by("id"))]
        engine.dispose()
        return result

    def columns(self, table: str = "evo_thing") -> dict[str, dict[str, Any]]:
        engine = sync_engine(self.db_url)
        with engine.connect() as connection:
            result = {c["name"]: c for c in inspect(connection).get_columns(table)}
        engine.dispose()
        return result

    def schema(self) -> dict[str, Any]:
        """Everything reflection can see, to prove a refused or failed plan changed nothing."""
        engine = sync_engine(self.db_url)
        with engine.connect() as connection:
            reflected = inspect(connection)
            snapshot = {
                t: (
                    [(c["name"], str(c["type"]), c["nullable"]) for c in reflected.get_columns(t)],
                    sorted(str(i) for i in reflected.get_indexes(t)),
                    sorted(str(u) for u in reflected.get_unique_constraints(t)),
                    sorted(str(f) for f in reflected.get_foreign_keys(t)),
                )
                for t in sorted(reflected.get_table_names())
            }
        engine.dispose()
        return snapshot

    def reflect(self, kind: str, table: str = "evo_thing") -> list[dict[str, Any]]:
        engine = sync_engine(self.db_url)
        with engine.connect() as connection:
            result: list[dict[str, Any]] = getattr(inspect(connection), kind)(table)
        engine.dispose()
        return result

    def log_size(self) -> int:
        engine = sync_engine(self.db_url)
        with engine.connect() as connection:
            size = len(list(connection.execute(select(migration_log_table.c.id))))
        engine.dispose()
        return size


@pytest.fixture
def evo(tmp_path: Path, db_url: str) -> Evolving:
    pack = Evolving(tmp_path / "packs", db_url)
    pack.migrate()
    pack.fill()
    return pack


def thing_with(**changes: Any) -> dict[str, Any]:
    fields = {**THING["fields"]}
    for name, definition in changes.items():
        if definition is None:
            fields.pop(name)
        else:
            fields[name] = definition
    return {**THING, "fields": fields}


def unchanged(before: list[dict[str, Any]], after: list[dict[str, Any]], *skip: str) -> None:
    assert len(after) == len(before) == ROWS
    for old, new in zip(before, after, strict=True):
        for key, value in old.items():
            if key not in skip:
                assert new[key] == value, (key, old, new)


def settled(evo: Evolving) -> None:
    """After a migration, the definitions and the database agree."""
    assert evo.migrate().steps == []


def test_add_nullable_field_keeps_rows(evo: Evolving) -> None:
    before = evo.rows()
    evo.write({"owner": OWNER, "thing": thing_with(colour={"type": "string", "max_length": 30})})
    plan = evo.migrate()
    assert [s.description for s in plan.steps] == ["add column evo_thing.colour (varchar(30))"]
    after = evo.rows()
    unchanged(before, after)
    assert {row["colour"] for row in after} == {None}
    settled(evo)


def test_add_fields_with_constant_defaults_fills_existing_rows(evo: Evolving) -> None:
    before = evo.rows()
    evo.write(
        {
            "owner": OWNER,
            "thing": thing_with(
                currency={"type": "string", "default": "EUR", "required": True},
                stock={"type": "integer", "default": 7},
                active={"type": "boolean", "default": True},
                level={"type": "enum", "values": ["low", "high"], "default": "low"},
                rate={"type": "decimal", "scale": 3, "default": "1.125"},
            ),
        }
    )
    evo.migrate()
    after = evo.rows()
    unchanged(before, after)
    for row in after:
        assert row["currency"] == "EUR"
        assert row["stock"] == 7
        assert row["active"] in (True, 1)
        assert row["level"] == "low"
        assert evo.decimal(row["rate"], 3) == Decimal("1.125")
    settled(evo)


def test_required_field_without_default_is_refused_on_rows(evo: Evolving) -> None:
    schema = evo.schema()
    evo.write({"owner": OWNER, "thing": thing_with(sku={"type": "string", "required": True})})
    plan = evo.migrate(allow_data_loss=True)
    assert len(plan.refused) == 1
    assert "has no default and the table has 20 rows" in plan.reasons()[0]
    assert evo.schema() == schema
    assert evo.log_size() == 1


def test_widening_types_keeps_values(evo: Evolving) -> None:
    before = evo.rows()
    evo.write(
        {
            "owner": OWNER,
            "thing": thing_with(
                code={"type": "string", "max_length": 40},
                qty={"type": "decimal", "precision": 24, "scale": 2},
                price={"type": "decimal", "precision": 14, "scale": 4},
                name={"type": "text", "required": True},
            ),
        }
    )
    plan = evo.migrate()
    assert not plan.refused
    assert len(plan.steps) == 4
    after = evo.rows()
    unchanged(before, after, "qty", "price")
    for old, new in zip(before, after, strict=True):
        assert (new["qty"] is None) == (old["qty"] is None)
        if old["qty"] is not None:
            assert evo.decimal(new["qty"], 2) == old["qty"]  # SQLite: x 100, exactly
        assert evo.decimal(new["price"], 4) == evo.decimal(old["price"], 2)
    assert evo.columns()["code"]["type"].length == 40
    settled(evo)


def test_narrowing_a_string_is_refused_only_when_values_do_not_fit(evo: Evolving) -> None:
    before = evo.rows()
    schema = evo.schema()
    evo.write({"owner": OWNER, "thing": thing_with(name={"type": "string", "max_length": 5})})
    plan = evo.migrate()
    assert len(plan.refused) == 1
    assert "would cut values of up to 18 characters to 5" in plan.reasons()[0]
    assert "--allow-data-loss" in plan.reasons()[0]
    assert evo.schema() == schema
    evo.write({"owner": OWNER, "thing": thing_with(code={"type": "string", "max_length": 3})})
    assert not evo.migrate().refused  # every code is three characters
    unchanged(before, evo.rows())
    assert evo.columns()["code"]["type"].length == 3
    settled(evo)


def test_converting_a_type_needs_permission_and_casts(evo: Evolving) -> None:
    before = evo.rows()
    evo.write({"owner": OWNER, "thing": thing_with(code={"type": "integer"})})
    assert evo.migrate().refused
    plan = evo.migrate(allow_data_loss=True)
    assert not plan.refused
    after = evo.rows()
    unchanged(before, after, "code")
    assert [row["code"] for row in after] == list(range(1, ROWS + 1))
    settled(evo)


def test_a_failing_step_leaves_the_schema_and_rows_as_they_were(evo: Evolving) -> None:
    # '001' and '1' differ as strings, so 'code' can be unique; as integers they collide.
    evo.write({"owner": OWNER, "thing": thing_with(code={"type": "string", "unique": True})})
    evo.migrate()
    engine = sync_engine(evo.db_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE evo_thing SET code = '1' WHERE id = 2")
    engine.dispose()
    before, schema, logged = evo.rows(), evo.schema(), evo.log_size()
    evo.write(
        {
            "owner": OWNER,
            "thing": thing_with(code={"type": "integer", "unique": True}, extra={"type": "string"}),
        }
    )
    with pytest.raises(MigrationFailed, match="nothing was changed"):
        evo.migrate(allow_data_loss=True)
    assert evo.schema() == schema
    assert evo.rows() == before
    assert evo.log_size() == logged


def test_making_a_field_required(evo: Evolving) -> None:
    schema = evo.schema()
    evo.write({"owner": OWNER, "thing": thing_with(qty={"type": "integer", "required": True})})
    plan = evo.migrate(allow_data_loss=True)
    assert plan.reasons() == [
        "evo_thing.qty cannot become required: 4 rows have no value; give the field a "
        "default or fill those rows first"
    ]
    assert evo.schema() == schema
    before = evo.rows()
    evo.write(
        {
            "owner": OWNER,
            "thing": thing_with(qty={"type": "integer", "required": True, "default": 0}),
        }
    )
    plan = evo.migrate()
    assert "4 empty values set to the default" in plan.steps[0].description
    after = evo.rows()
    unchanged(before, after, "qty")
    assert [row["qty"] for row in after] == [row["qty"] or 0 for row in before]
    assert evo.columns()["qty"]["nullable"] is False
    settled(evo)


def test_unique_is_refused_on_duplicates_and_enforced_otherwise(evo: Evolving) -> None:
    schema = evo.schema()
    evo.write(
        {
            "owner": OWNER,
            "thing": thing_with(owner={"type": "reference", "to": "owner", "unique": True}),
        }
    )
    plan = evo.migrate(allow_data_loss=True)
    assert "3 values occur more than once" in plan.reasons()[0]
    assert evo.schema() == schema
    before = evo.rows()
    evo.write({"owner": OWNER, "thing": thing_with(code={"type": "string", "unique": True})})
    evo.migrate()
    unchanged(before, evo.rows())
    engine = sync_engine(evo.db_url)
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.exec_driver_sql("UPDATE evo_thing SET code = '001' WHERE id = 2")
    engine.dispose()
    settled(evo)


def test_indexes_and_composite_groups(evo: Evolving) -> None:
    before = evo.rows()
    definition = thing_with(qty={"type": "integer", "index": True})
    definition["indexes"] = [["owner", "price"]]
    definition["unique"] = [["name", "code"]]
    evo.write({"owner": OWNER, "thing": definition})
    evo.migrate()
    unchanged(before, evo.rows())
    indexes = {tuple(i["column_names"]) for i in evo.reflect("get_indexes")}
    assert ("qty",) in indexes
    assert ("owner", "price") in indexes
    uniques = {tuple(u["column_names"]) for u in evo.reflect("get_unique_constraints")}
    uniques |= {tuple(i["column_names"]) for i in evo.reflect("get_indexes") if i["unique"]}
    assert ("name", "code") in uniques
    settled(evo)
    evo.write({"owner": OWNER, "thing": THING})
    evo.migrate()
    indexes = {tuple(i["column_names"]) for i in evo.reflect("get_indexes")}
    assert ("qty",) not in indexes
    assert ("owner", "price") not in indexes
    settled(evo)


def test_adding_a_reference_adds_a_foreign_key(evo: Evolving) -> None:
    before = evo.rows()
    evo.write(
        {
            "owner": OWNER,
            "thing": thing_with(
                backup={"type": "reference", "to": "owner", "on_delete": "set_null"}
            ),
        }
    )
    evo.migrate()
    unchanged(before, evo.rows())
    keys = {tuple(k["constrained_columns"]) for k in evo.reflect("get_foreign_keys")}
    assert keys == {("owner",), ("backup",)}
    settled(evo)


def test_dropping_a_field_needs_permission(evo: Evolving) -> None:
    before, schema = evo.rows(), evo.schema()
    evo.write({"owner": OWNER, "thing": thing_with(notes=None)})
    plan = evo.migrate()
    assert plan.reasons() == [
        "drops column evo_thing.notes, which holds 6 values: refused without --allow-data-loss"
    ]
    assert evo.schema() == schema
    plan = evo.migrate(allow_data_loss=True)
    assert not plan.refused
    after = evo.rows()
    assert "notes" not in after[0]
    unchanged([{k: v for k, v in r.items() if k != "notes"} for r in before], after)
    settled(evo)


def test_dropping_an_entity_needs_permission(evo: Evolving) -> None:
    schema = evo.schema()
    evo.write({"owner": OWNER})
    plan = evo.migrate()
    assert plan.reasons() == [
        "drops table evo_thing and its 20 rows: refused without --allow-data-loss"
    ]
    assert evo.schema() == schema
    evo.migrate(allow_data_loss=True)
    assert "evo_thing" not in evo.schema()
    assert len(evo.rows("evo_owner")) == 3
    settled(evo)


def test_renamed_field_keeps_its_data(evo: Evolving) -> None:
    before = evo.rows()
    evo.write(
        {
            "owner": OWNER,
            "thing": thing_with(
                notes=None,
                remarks={"type": "text", "renamed_from": "notes"},
                code=None,
                reference={"type": "string", "max_length": 30, "renamed_from": "code"},
            ),
        }
    )
    plan = evo.migrate()
    descriptions = [s.description for s in plan.steps]
    assert descriptions[:2] == [
        "rename column evo_thing.code to reference (keeps its data)",
        "rename column evo_thing.notes to remarks (keeps its data)",
    ] or descriptions[:2] == [
        "rename column evo_thing.notes to remarks (keeps its data)",
        "rename column evo_thing.code to reference (keeps its data)",
    ]
    assert any("evo_thing.reference: type varchar(20) to varchar(30)" in d for d in descriptions)
    after = evo.rows()
    for old, new in zip(before, after, strict=True):
        assert new["remarks"] == old["notes"]
        assert new["reference"] == old["code"]
        assert "notes" not in new
    settled(evo)


def test_dry_run_rehearses_and_changes_nothing(evo: Evolving) -> None:
    schema, logged = evo.schema(), evo.log_size()
    evo.write({"owner": OWNER, "thing": thing_with(colour={"type": "string", "index": True})})
    plan = evo.migrate(dry_run=True)
    statements = " ".join(plan.sql).upper()
    assert "ALTER TABLE EVO_THING ADD COLUMN COLOUR" in statements
    assert "CREATE INDEX IX_EVO_THING_COLOUR" in statements
    assert evo.schema() == schema
    assert evo.log_size() == logged
    assert evo.migrate().steps  # still to do


def test_each_applied_migration_is_logged(evo: Evolving) -> None:
    evo.write({"owner": OWNER, "thing": thing_with(colour={"type": "string"})})
    evo.migrate()
    engine = sync_engine(evo.db_url)
    with engine.connect() as connection:
        rows = list(connection.execute(select(migration_log_table).order_by("id")))
    engine.dispose()
    assert [r.definitions_hash for r in rows] == ["v1", "v2"]
    assert "add column evo_thing.colour" in rows[1].plan
    assert "ALTER TABLE evo_thing ADD COLUMN colour" in rows[1].plan
    assert rows[1].applied_by == "tests"

"""A scheduled rule's ``where`` runs as SQL where it can: the query selects exactly the
records the expression holds for (compared over records with every combination of empty
and set values, for many expressions), a ``where`` SQL cannot say falls back to reading
every record and still acts on the right ones, and ``tessera validate`` points it out. On
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from typing import TYPE_CHECKING, Any

from click.testing import CliRunner

from cli.main import main
from engine import EngineModel, open_database
from engine.expressions import Scope, compile_expression
from engine.writes import WriteContext
from runtime.app import load_definitions
from tests.conftest import pack_instance

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import Instance

SQL_WHERES = [
    "done",
    "not done",
    "done == false",
    "done != true",
    "title == 'b'",
    "title != 'b'",
    "not (title == 'b')",
    "title in ['a', 'c']",
    "title not in ['a', 'c']",
    "not (title in ['a'])",
    "title is none",
    "title is not none",
    "qty > 1",
    "qty <= 1 or qty is none",
    "1 < qty",
    "qty == 2 and not done",
    "amount >= 10",
    "amount < 10 and amount > -5",
    "amount != 0",
    "due is not none and due < today()",
    "not done and due is not none and due <= today()",
    "due == today()",
    "today() >= due",
    "at is not none and at < now()",
    "due is not none and due < add_days(today(), 1)",
    "due >= add_days(today(), -1)",
    "due <= add_months(today(), -1) or due > add_months(today(), 1)",
    "at is not none and at > add_hours(now(), -24)",
    "at < add_days(now(), 2)",
    "not (title == 'a' or qty == 1)",
    "true",
    "false or done",
]
FALLBACK_WHERES = [
    "qty is not none and qty + 1 > 2",
    "title | length > 1",
    "(title or '') < 'b'",
    "due is not none and due < today() - 0",
    "due is not none and qty is not none and due < add_days(today(), qty)",
]

TODAY = dt.datetime.now(dt.UTC).date()
NOW = dt.datetime.now(dt.UTC)


def _files(wheres: list[str]) -> dict[str, str]:
    rules = "".join(
        f'- name: r{i}\n  schedule: "0 0 1 1 *"\n  where: "{where}"\n'
        '  actions:\n    - update: {values: {touched: "{{ touched + 1 }}"}}\n'
        for i, where in enumerate(wheres)
    )
    return {
        "module.yaml": "name: ops\nversion: 1.0.0\n",
        "entities/task.yaml": """\
fields:
  title:   {type: string}
  qty:   {type: integer}
  amount:  {type: decimal, precision: 12, scale: 2}
  done:    {type: boolean}
  due:     {type: date}
  at:      {type: datetime}
  touched: {type: integer, default: 0}
""",
        "rules/task.yaml": rules,
    }


def _records() -> list[dict[str, Any]]:
    titles = [None, "a", "b", "c"]
    counts = [None, 1, 2]
    amounts = [None, "-7.50", "0", "10", "12.25"]
    dones = [None, True, False]
    dues = [None, TODAY - dt.timedelta(days=1), TODAY, TODAY + dt.timedelta(days=1)]
    ats = [None, NOW - dt.timedelta(hours=1), NOW + dt.timedelta(hours=1)]
    rows = []
    for i, combo in enumerate(itertools.product(titles, counts, amounts, dones, dues, ats)):
        if i % 7:  # a spread of the combinations: every value appears with many others
            continue
        title, qty, amount, done, due, at = combo
        rows.append(
            {
                "title": title,
                "qty": qty,
                "amount": amount,
                "done": done,
                "due": due.isoformat() if due else None,
                "at": at.isoformat() if at else None,
            }
        )
    return rows


def _instance(db_url: str, tmp_path: Path, wheres: list[str]) -> Instance:
    instance = pack_instance(tmp_path, db_url, "ops", _files(wheres))
    with instance.client() as client:
        for row in _records():
            response = client.post("/api/v1/ops/task", json=row)
            assert response.status_code == 201, response.text
    return instance


async def _compare(instance: Instance, wheres: list[str]) -> dict[str, Any]:
    project = load_definitions(instance.settings)
    url = instance.settings.database_url
    model = EngineModel.for_url(project, url)
    store = model.store("ops", "task")
    database = await open_database(url, pool_size=1)
    found: dict[str, Any] = {}
    try:
        async with database.connection() as conn:
            page = store.records.sql.ids_after
            rows = await conn.fetch(page.sql, page.args({"after": 0, "limit": 10_000}))
            records = await store.records.get_many(conn, [int(r[0]) for r in rows])
            for i, where in enumerate(wheres):
                chosen = store.effects.selections[f"r{i}"]
                if chosen is None:
                    found[where] = None
                    continue
                selected = {
                    int(r[0]) for r in await conn.fetch(chosen.sql.sql, chosen.args(0, 10_000))
                }
                expression = compile_expression(where)
                holds, failed = set(), set()
                for ident, record in records.items():
                    try:
                        if expression(Scope(record)):
                            holds.add(int(ident))
                    except TypeError:  # None < date: the expression fails for that record
                        failed.add(int(ident))
                found[where] = (selected, holds, failed, len(records))
    finally:
        await database.close()
    return found


def test_the_sql_of_a_where_selects_what_the_expression_holds_for(
    db_url: str, tmp_path: Path
) -> None:
    instance = _instance(db_url, tmp_path, SQL_WHERES)
    found = asyncio.run(_compare(instance, SQL_WHERES))
    for where, result in found.items():
        assert result is not None, f"{where} should run as SQL"
        selected, holds, failed, total = result
        assert total > 0
        assert holds <= selected, where
        assert selected - holds <= failed, where  # only records the expression fails on


def test_a_where_sql_cannot_say_reads_every_record(db_url: str, tmp_path: Path) -> None:
    wheres = ["title == 'b'", *FALLBACK_WHERES]
    instance = _instance(db_url, tmp_path, wheres)
    found = asyncio.run(_compare(instance, wheres))
    assert found["title == 'b'"] is not None
    assert all(found[w] is None for w in FALLBACK_WHERES)

    async def run(name: str, *, read_all: bool) -> int:
        project = load_definitions(instance.settings)
        url = instance.settings.database_url
        store = EngineModel.for_url(project, url).store("ops", "task")
        database = await open_database(url, pool_size=1)
        try:
            async with database.transaction() as conn:
                return await store.effects.run_scheduled(
                    conn, name, WriteContext(), read_all=read_all
                )
        finally:
            await database.close()

    expected = sum(1 for r in _records() if r["qty"] is not None and r["qty"] + 1 > 2)
    assert asyncio.run(run("r1", read_all=False)) == expected  # the fallback: every record
    titled_b = sum(1 for r in _records() if r["title"] == "b")
    assert asyncio.run(run("r0", read_all=False)) == titled_b  # the query
    assert asyncio.run(run("r0", read_all=True)) == titled_b  # the old way, same records
    with instance.client() as client:
        tasks = client.get("/api/v1/ops/task?limit=1000").json()["data"]
        for task in tasks:  # r1 acted on qty 2, r0 twice on title 'b'
            assert task["touched"] == (task["qty"] == 2) + 2 * (task["title"] == "b")

    result = CliRunner().invoke(main, ["validate", "--config", str(instance.settings.config_path)])
    assert result.exit_code == 0, result.output
    advice = [line for line in result.output.splitlines() if "cannot run as SQL" in line]
    assert len(advice) == len(FALLBACK_WHERES), result.output
    assert "scheduled rule 'r1' of ops.task" in advice[0]

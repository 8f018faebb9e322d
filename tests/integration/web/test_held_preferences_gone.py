"""A locale or time zone a user holds that is none any more (a zone removed from the tz
database by an update, a value written straight into the user table) is read as the
instance's, with a warning in the log: every page, the API and the preferences page keep
working for that user (never a 500); on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import bindparam, update

from engine import open_database
from engine.sql import compile_sql
from engine.tables import user_table
from runtime import formatting
from tests.conftest import write_instance
from tests.support.cli import REPO
from tests.support.identity import bearer, issue_token
from tests.support.web import csrf_of, signed_in

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import Instance

PACKS = REPO / "docs" / "examples" / "locales" / "packs"
PASSWORD = "correct horse battery"
DEALS = "/app/deals/deal"


def hold(instance: Instance, username: str, locale: str | None, timezone: str | None) -> None:
    """Write ``locale`` and ``timezone`` into the user's row as they are, unchecked."""

    async def run() -> None:
        database = await open_database(instance.settings.database_url, pool_size=1)
        try:
            statement = (
                update(user_table)
                .where(user_table.c.username == bindparam("username"))
                .values(locale=bindparam("locale"), timezone=bindparam("timezone"))
            )
            compiled = compile_sql(statement, database.sa_dialect)
            params = {"username": username, "locale": locale, "timezone": timezone}
            async with database.transaction() as conn:
                assert await conn.execute(compiled.sql, compiled.args(params)) == 1
        finally:
            await database.close()

    asyncio.run(run())


@pytest.fixture
def shop(db_url: str, tmp_path: Path) -> Instance:
    instance = write_instance(
        tmp_path / "i",
        db_url,
        ["deals"],
        [PACKS],
        company={"currency": "EUR"},
        locale="de_DE",
        timezone="Europe/Berlin",
    )
    instance.migrate()
    issue_token(instance.settings.database_url, "ada", ("admin",), password=PASSWORD)
    return instance


@pytest.mark.parametrize(
    ("locale", "timezone"),
    [
        (None, "Mars/Olympus_Mons"),  # a zone the tz database no longer has
        (None, "../../etc/passwd"),
        ("xx_YY", None),
        ("de_DE; x", "Europe/Berlin "),
        ("klingon", "Asia/Nowhere"),
    ],
)
def test_a_held_zone_or_locale_that_is_none_reads_as_the_instances(
    shop: Instance, locale: str | None, timezone: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    with signed_in(shop, "ada", PASSWORD) as ada:
        created = ada.post(
            "/api/v1/deals/deal",
            json={"name": "Northwind", "amount": "1450.5", "signed_at": "2026-12-06T14:30:00Z"},
            headers=bearer(issue_token(shop.settings.database_url, "ada")),
        )
        assert created.status_code == 201, created.text
        record_id = created.json()["data"]["id"]
        hold(shop, "ada", locale, timezone)
        formatting._held_none.cache_clear()  # warned once per process: this test's own
        token = issue_token(shop.settings.database_url, "ada")  # the user is read again
        with caplog.at_level(logging.WARNING, logger="runtime.formatting"):
            listed = ada.get(DEALS)
            assert listed.status_code == 200, listed.text
            assert "1.450,50\u00a0€" in listed.text  # the instance's de_DE
            form = ada.get(f"{DEALS}/{record_id}")
            assert form.status_code == 200
            assert 'type="datetime-local" value="2026-12-06T15:30"' in form.text  # Berlin
            people = ada.get(
                "/api/v1/deals/deal/_export?format=csv&for=people", headers=bearer(token)
            )
            assert people.status_code == 200, people.text
            assert "06.12.2026" in people.text
            page = ada.get("/app/_preferences")
            assert page.status_code == 200
            assert "06.12.2026, 15:30 CET" in page.text  # the sample moment, in Berlin
            select = page.text.split('name="timezone"', 1)[1].split("</select>", 1)[0]
            assert " selected>" not in select  # the instance's: saving repairs the row
            saved = ada.post(
                "/app/_preferences",
                data={"csrf_token": csrf_of(page), "locale": "", "timezone": ""},
                follow_redirects=False,
            )
            assert saved.status_code == 303
        held = [r.getMessage() for r in caplog.records if r.name == "runtime.formatting"]
        assert held, "no warning was logged"
        assert all("reading in the instance's" in m for m in held), held
        assert len(held) == len(set(held)), held  # once per value, not on every page
        assert ada.get(DEALS).status_code == 200
        assert not re.search(r"\bMars\b", ada.get("/app/_preferences").text)

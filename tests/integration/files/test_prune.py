"""``tessera files prune`` on SQLite and PostgreSQL: the files of records the database
deleted by itself, and bytes no row names, are listed by --dry-run and then deleted; the
files records still hold are kept."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from engine import open_database
from tests.integration.files.conftest import PDF, PNG, make_claim
from tests.support.cli import tessera

if TYPE_CHECKING:
    from tests.conftest import Instance

BASE = "/api/v1/papers/claim"


def _stored(instance: Instance) -> set[str]:
    root = instance.path / "files"
    return {f"{p.parent.name}/{p.name}" for p in root.rglob("*") if p.is_file()}


def _delete_behind_the_api(instance: Instance, record_id: str) -> None:
    """As a cascade does: the row goes, nothing else is told."""

    async def run() -> None:
        database = await open_database(instance.settings.database_url)
        try:
            async with database.transaction() as conn:
                await conn.execute("DELETE FROM papers_claim WHERE id = " + str(int(record_id)), ())
        finally:
            await database.close()

    asyncio.run(run())


def test_prune_deletes_what_no_record_reaches(papers: Instance) -> None:
    with papers.client() as client:
        kept = make_claim(client, "Kept")
        gone = make_claim(client, "Gone")
        client.put(f"{BASE}/{kept}/_files/receipt?filename=k.pdf", content=PDF)
        client.post(f"{BASE}/{kept}/_attachments?filename=k.png", content=PNG)
        client.put(f"{BASE}/{gone}/_files/receipt?filename=g.pdf", content=PDF)
        client.post(f"{BASE}/{gone}/_attachments?filename=g.png", content=PNG)
        before = _stored(papers)
        assert len(before) == 4
    _delete_behind_the_api(papers, gone)
    stray = papers.path / "files" / "ab" / "ab0123456789abcdef0123456789abcd"
    stray.parent.mkdir(exist_ok=True)
    stray.write_bytes(b"left over")

    dry = tessera("files", "prune", "--dry-run", cwd=papers.path)
    assert dry.returncode == 0, dry.stderr
    assert "would delete 2 file row(s) and 1 unnamed stored file(s)" in dry.stdout
    assert len(_stored(papers)) == 5

    done = tessera("files", "prune", cwd=papers.path)
    assert done.returncode == 0, done.stderr
    assert "deleted 2 file row(s) and 1 unnamed stored file(s)" in done.stdout
    assert len(_stored(papers)) == 2
    with papers.client() as client:
        assert client.get(f"{BASE}/{kept}/_files/receipt").content == PDF
        listing = client.get(f"{BASE}/{kept}/_attachments").json()["data"]
        assert client.get(listing[0]["url"]).content == PNG
    again = tessera("files", "prune", cwd=papers.path)
    assert "deleted 0 file row(s) and 0 unnamed stored file(s)" in again.stdout

"""The web list's *from* and *to* filters of a datetime field are date pickers: a day there
is read in the reader's time zone, *to* through the end of that day, in the list, its pages
and its Export CSV, on SQLite and PostgreSQL (a picked date was a 400: the API takes a
moment with an offset)."""

from __future__ import annotations

import csv
import io
import re
from typing import TYPE_CHECKING

from tests.conftest import pack_instance
from tests.support.cli import tessera
from tests.support.identity import issue_token
from tests.support.web import signed_in

if TYPE_CHECKING:
    from pathlib import Path

PASSWORD = "correct horse battery"
FILES = {
    "module.yaml": 'name: desk\nversion: "1.0.0"\n',
    "entities/visit.yaml": """\
title: name
fields:
  name: {type: string, required: true}
  seen_at: {type: datetime}
""",
}
VISITS = {
    "late on the 1st in Berlin": "2026-01-01T22:30:00+00:00",
    "early on the 2nd in Berlin": "2026-01-01T23:30:00+00:00",
    "last minute of the 2nd in Berlin": "2026-01-02T22:59:00+00:00",
    "midnight of the 3rd in Berlin": "2026-01-02T23:00:00+00:00",
}


def listed(text: str) -> list[str]:
    return sorted(re.findall(r'href="/app/desk/visit/\d+">([^<]+)</a>', text))


def test_a_day_is_read_in_the_readers_time_zone(db_url: str, tmp_path: Path) -> None:
    instance = pack_instance(tmp_path, db_url, "desk", FILES)
    url = instance.settings.database_url
    issue_token(url, "berta", ("admin",), password=PASSWORD)
    issue_token(url, "uma", ("admin",), password=PASSWORD)
    done = tessera("user", "preferences", "berta", "--timezone", "Europe/Berlin", cwd=instance.path)
    assert done.returncode == 0, done.stderr
    with instance.client() as api:
        for name, moment in VISITS.items():
            made = api.post("/api/v1/desk/visit", json={"name": name, "seen_at": moment})
            assert made.status_code == 201, made.text
    query = "seen_at__gte=2026-01-02&seen_at__lte=2026-01-02"
    with signed_in(instance, "berta", PASSWORD) as berta:
        page = berta.get(f"/app/desk/visit?{query}")
        assert page.status_code == 200, page.text[:600]
        assert listed(page.text) == [
            "early on the 2nd in Berlin",
            "last minute of the 2nd in Berlin",
        ]
        assert 'name="seen_at__lte" type="date" step="any" value="2026-01-02"' in page.text
        export = berta.get(f"/app/desk/visit/export.csv?{query}&for=people")
        assert export.status_code == 200, export.text[:600]
        rows = list(csv.reader(io.StringIO(export.text.lstrip("\ufeff"))))
        names = sorted(name for row in rows[1:] for name in row if name in VISITS)
        assert names == ["early on the 2nd in Berlin", "last minute of the 2nd in Berlin"]
        # the first and last days there are: no bound past the calendar, no error
        wide = berta.get("/app/desk/visit?seen_at__gte=0001-01-01&seen_at__lte=9999-12-31")
        assert wide.status_code == 200, wide.text[:600]
        assert len(listed(wide.text)) == 4
        # a moment with its offset is still taken as the API takes it
        exact = berta.get("/app/desk/visit?seen_at__lte=2026-01-01T23:00:00%2B00:00")
        assert listed(exact.text) == ["late on the 1st in Berlin"]
        assert berta.get("/app/desk/visit?seen_at__lte=2026-02-30").status_code == 400
    with signed_in(instance, "uma", PASSWORD) as uma:  # the instance's time zone: UTC
        page = uma.get(f"/app/desk/visit?{query}")
        assert page.status_code == 200, page.text[:600]
        assert listed(page.text) == [
            "last minute of the 2nd in Berlin",
            "midnight of the 3rd in Berlin",
        ]

"""The preferences page offers the locale and time zone a user holds even when its lists
do not (set with ``tessera user preferences``: ``zh_CN`` is ``zh_Hans_CN``, ``EST`` has no
region), so that saving the page, for the other choice, keeps them; on SQLite and
PostgreSQL."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tests.conftest import write_instance
from tests.support.cli import tessera
from tests.support.identity import issue_token
from tests.support.web import csrf_of, signed_in

if TYPE_CHECKING:
    from pathlib import Path

PASSWORD = "correct horse battery"


def selected(page: str, name: str) -> str:
    """The value of the option a browser submits for the select ``name``."""
    select = page.split(f'name="{name}"', 1)[1].split("</select>", 1)[0]
    found = re.search(r'<option value="([^"]*)" selected>', select)
    return found.group(1) if found else ""


def test_saving_the_page_keeps_a_choice_its_lists_lack(db_url: str, tmp_path: Path) -> None:
    instance = write_instance(tmp_path / "i", db_url, ["kitchen"], locale="de_DE")
    instance.migrate()
    issue_token(instance.settings.database_url, "zed", ("admin",), password=PASSWORD)
    done = tessera(
        "user", "preferences", "zed", "--locale", "zh_CN", "--timezone", "EST", cwd=instance.path
    )
    assert done.returncode == 0, done.stderr
    assert "locale zh_Hans_CN, time zone EST" in done.stdout
    with signed_in(instance, "zed", PASSWORD) as zed:
        page = zed.get("/app/_preferences")
        assert page.status_code == 200
        assert (selected(page.text, "locale"), selected(page.text, "timezone")) == (
            "zh_Hans_CN",
            "EST",
        )
        saved = zed.post(
            "/app/_preferences",
            data={
                "csrf_token": csrf_of(page),
                "locale": selected(page.text, "locale"),
                "timezone": selected(page.text, "timezone"),
            },
            follow_redirects=False,
        )
        assert saved.status_code == 303
    shown = tessera("user", "preferences", "zed", cwd=instance.path)
    assert "zed: locale zh_Hans_CN, time zone EST" in shown.stdout

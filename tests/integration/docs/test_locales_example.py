"""The worked example of docs/locales.md "CSV exports for people" runs as written, on SQLite
and PostgreSQL: the pack of docs/examples/locales/ as it is, the page's setup commands, every
``curl`` checked against what the page shows, and the two CSV files the page prints are the
ones a de_DE reader (Ada) and an en_US reader in New York get; the deal's line prints in
the deal's currency; the load errors "Money on lines" shows are the loader's."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from metadata import DefinitionError, load_project
from tests.support import doc_examples
from tests.support.cli import REPO, tessera

PAGE = REPO / "docs" / "locales.md"
EXAMPLE = REPO / "docs" / "examples" / "locales"
SECTION = "## CSV exports for people"
NBSP = "\u00a0"
_TEXT = re.compile(r"^```text\n(.*?)^```", re.MULTILINE | re.DOTALL)


def section() -> str:
    return doc_examples.section(PAGE, SECTION)


def documented_csvs() -> list[str]:
    return _TEXT.findall(section())


def as_shown(csv_text: str) -> str:
    """A CSV as the page prints it: no byte order mark, line feeds, plain spaces (CLDR puts
    no-break spaces between an amount and its symbol, and before AM)."""
    return (
        csv_text.removeprefix("\ufeff")
        .replace("\r\n", "\n")
        .replace("\u00a0", " ")
        .replace("\u202f", " ")
    )


def test_the_files_are_the_ones_the_page_shows() -> None:
    text = PAGE.read_text(encoding="utf-8")
    entities = EXAMPLE / "packs" / "deals" / "entities"
    deal = (entities / "deal.yaml").read_text(encoding="utf-8")
    for line in deal.splitlines():
        if line.startswith(("  currency:", "  amount:")):
            assert line in text, line
    for line in (entities / "deal_line.yaml").read_text(encoding="utf-8").splitlines()[2:]:
        assert line in text, line
    assert "locale: en_US" in (EXAMPLE / "tessera.yaml").read_text(encoding="utf-8")
    assert len(documented_csvs()) == 2


def test_the_worked_example_answers_as_documented(db_url: str, tmp_path: Path) -> None:
    sh_blocks = doc_examples.blocks(section())
    folder = doc_examples.instance(EXAMPLE, db_url, tmp_path, ["deals"])
    names = doc_examples.run_setup(sh_blocks[0], folder)
    made = tessera(
        "user", "create", "bob", "--role", "admin", "--timezone", "America/New_York", cwd=folder
    )
    assert made.returncode == 0, made.stderr
    bob = tessera("token", "create", "bob", cwd=folder).stdout.strip()
    calls = doc_examples.calls(sh_blocks[1:])
    assert [call.status for call in calls] == [201, 201, 201, 200, 200]
    with doc_examples.client(folder) as http:
        for call in calls:
            doc_examples.replay(http, call, names)
        url = calls[3].url.replace("$API", names["API"]).removeprefix(doc_examples.LOCAL)
        printed = calls[4].url.replace("$API", names["API"]).removeprefix(doc_examples.LOCAL)
        for token, price in ((names["TOKEN"], f"1.450,00{NBSP}€"), (bob, "€1,450.00")):
            html = http.get(printed, headers={"authorization": f"Bearer {token}"}).text
            line = rf"<td>Consulting</td><td>[^<]*</td><td>[^<]*</td><td>{price}</td>"
            assert re.search(line, html), html  # product, hours, price, total
        for token, shown in zip((names["TOKEN"], bob), documented_csvs(), strict=True):
            answer = http.get(url, headers={"authorization": f"Bearer {token}"})
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"].startswith("text/csv")
            assert answer.text.startswith("\ufeff")  # spreadsheets read it as UTF-8
            assert as_shown(answer.text) == shown
        machines = http.get(
            url.replace("for=people", "for=machines"),
            headers={"authorization": f"Bearer {names['TOKEN']}"},
        )
        assert machines.text.splitlines()[1] == (
            "Northwind,1,financial_services,1450000.00,12000,2026-12-24,2026-12-06T14:30:00+00:00"
        )
        for bad in ("for=robots", "for=people&for=people", "for=people&format=jsonl"):
            refused = http.get(
                f"{names['API'].removeprefix(doc_examples.LOCAL)}/deal/_export?{bad}",
                headers={"authorization": f"Bearer {names['TOKEN']}"},
            )
            assert refused.status_code == 400, bad
            assert refused.headers["content-type"] == "application/problem+json"


def documented_errors() -> list[str]:
    lines = doc_examples.section(PAGE, "### Money on lines")
    return _TEXT.findall(lines)[0].splitlines()


@pytest.mark.parametrize(
    ("file", "before", "after"),
    [
        ("deal_line.yaml", "parent.currency}", "parent.curency}"),
        ("deal_line.yaml", "parent.currency}", "parent.amount}"),
        ("deal.yaml", "currency: currency}", "currency: parent.currency}"),
    ],
)
def test_the_load_errors_are_the_ones_the_page_shows(
    file: str, before: str, after: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(EXAMPLE / "packs", tmp_path / "packs")
    monkeypatch.chdir(tmp_path)
    path = Path("packs/deals/entities") / file
    text = path.read_text(encoding="utf-8")
    assert before in text
    load_project(["deals"], [Path("packs")])  # as shipped, it loads
    path.write_text(text.replace(before, after), encoding="utf-8")
    with pytest.raises(DefinitionError) as raised:
        load_project(["deals"], [Path("packs")])
    (problem,) = [str(p) for p in raised.value.problems]
    assert problem in documented_errors()

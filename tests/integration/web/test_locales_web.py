"""The web UI in the reader's locale and time zone (docs/locales.md), through HTTP on SQLite
and PostgreSQL: lists and read-only forms show ``1.450.000,00 €``, German dates, enum
labels, numbers right-aligned; forms take numbers as the user writes them and refuse what
their locale does not write (never a silent misreading); moments in the user's time zone;
the preferences page; the Export CSV button gives the CSV for people."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.conftest import write_instance
from tests.support.cli import REPO, tessera
from tests.support.identity import bearer, issue_token
from tests.support.web import csrf_of, signed_in

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

    from tests.conftest import Instance

PACKS = REPO / "docs" / "examples" / "locales" / "packs"
PASSWORD = "correct horse battery"
NBSP = "\u00a0"
DEALS = "/app/deals/deal"


@pytest.fixture
def shop(db_url: str, tmp_path: Path) -> Instance:
    instance = write_instance(
        tmp_path / "i",
        db_url,
        ["deals"],
        [PACKS],
        company={"currency": "EUR"},
        timezone="Europe/Berlin",
    )
    instance.migrate()
    issue_token(instance.settings.database_url, "ada", ("admin",), password=PASSWORD)
    issue_token(instance.settings.database_url, "bob", ("admin",), password=PASSWORD)
    done = tessera("user", "preferences", "ada", "--locale", "de_DE", cwd=instance.path)
    assert done.returncode == 0, done.stderr
    return instance


@pytest.fixture
def ada(shop: Instance) -> Iterator[TestClient]:
    with signed_in(shop, "ada", PASSWORD) as client:
        yield client


def api_deal(shop: Instance, client: TestClient, record_id: str) -> dict[str, object]:
    token = issue_token(shop.settings.database_url, "ada")
    answer = client.get(f"/api/v1/deals/deal/{record_id}", headers=bearer(token))
    data: dict[str, object] = answer.json()["data"]
    return data


def save(client: TestClient, url: str, **values: str) -> tuple[int, str]:
    form = client.get(url)
    answer = client.post(url, data={"csrf_token": csrf_of(form), **values}, follow_redirects=False)
    return answer.status_code, answer.headers.get("location") or answer.text


def test_a_german_reader_sees_german_money_dates_and_labels(
    shop: Instance, ada: TestClient
) -> None:
    status, location = save(
        ada,
        f"{DEALS}/new",
        name="Northwind",
        industry="financial_services",
        currency="EUR",
        amount="1.450.000",
        quantity="12.000",
        closes="2026-12-24",
        signed_at="2026-12-06T15:30",
    )
    assert status == 303, location
    record_id = location.split("/")[-1].split("?")[0]
    stored = api_deal(shop, ada, record_id)
    assert stored["amount"] == "1450000.00"  # the API: its own format, for everyone
    assert stored["quantity"] == 12000
    assert stored["signed_at"] == "2026-12-06T14:30:00+00:00"  # typed in Berlin time

    listed = ada.get(DEALS).text
    assert re.search(r'<th scope="col" class="num t-decimal"[^>]*>\s*<a [^>]*>Amount', listed)
    cells = dict(
        re.findall(
            r'<td class="([^"]*)" data-label="(?:Amount|Quantity|Industry)">\s*([^<]*?)\s*<', listed
        )
    )
    assert cells == {
        "num t-decimal": f"1.450.000,00{NBSP}€",
        "num t-integer": "12.000",
        "t-enum": "Financial services",
    }
    assert "24.12.2026" in listed
    assert "for=people" in listed  # the Export CSV button

    form = ada.get(f"{DEALS}/{record_id}").text
    assert 'value="1.450.000,00" inputmode="decimal" class="num"' in form
    assert 'value="12.000" inputmode="numeric" class="num"' in form
    assert 'type="datetime-local" value="2026-12-06T15:30"' in form
    assert '<option value="financial_services" selected>Financial services</option>' in form

    charts = ada.get("/app/_dashboards/deals/deals").text  # bars, their table, the line
    assert 'class="chart-label">Financial services</text>' in charts
    assert re.search(r'class="chart-value">1\.450\.000,00</text>', charts)
    assert '<td class="num">1.450.000,00</td>' in charts
    assert 'class="chart-label">24.12.2026</text>' in charts
    assert 'class="chart-value">12.000</text>' in charts

    with signed_in(shop, "bob", PASSWORD) as bob:  # the instance's en_US, Berlin time
        listed = bob.get(DEALS).text
        assert "€1,450,000.00" in listed
        assert "12,000" in listed
        assert "Dec 24, 2026" in listed
        assert 'value="1,450,000.00"' in bob.get(f"{DEALS}/{record_id}").text
        charts = bob.get("/app/_dashboards/deals/deals").text
        assert re.search(r'class="chart-value">1,450,000\.00</text>', charts)
        assert 'class="chart-label">Dec 24, 2026</text>' in charts


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("1.450,50", "1450.50"), ("1450,5", "1450.50"), ("1.450", "1450.00"), ("-0,5", "-0.50")],
)
def test_numbers_are_read_as_the_user_writes_them(
    shop: Instance, ada: TestClient, typed: str, stored: str
) -> None:
    status, location = save(ada, f"{DEALS}/new", name="Deal", amount=typed)
    assert status == 303, location
    assert api_deal(shop, ada, location.split("/")[-1].split("?")[0])["amount"] == stored


def test_the_same_text_means_what_the_readers_locale_says(shop: Instance) -> None:
    with signed_in(shop, "bob", PASSWORD) as bob:  # en_US: a decimal point
        status, location = save(bob, f"{DEALS}/new", name="Deal", amount="1.450")
        assert status == 303, location
        assert api_deal(shop, bob, location.split("/")[-1].split("?")[0])["amount"] == "1.45"
        status, page = save(bob, f"{DEALS}/new", name="Deal", amount="1,45")
        assert status == 422  # 145 or 1.45? Refused, not guessed
        assert "&#39;1,45&#39; is not a number as written in English (United States)" in page


@pytest.mark.parametrize("typed", ["1450.50", "1,2,3", "1e5", "NaN", "\x00", "9" * 300, "٣"])
def test_a_number_the_locale_does_not_write_is_refused_at_its_field(
    ada: TestClient, typed: str
) -> None:
    status, page = save(ada, f"{DEALS}/new", name="Deal", amount=typed, quantity="7,5")
    assert status == 422, page
    assert "is not a number as written in German (Germany): for example 1.234,56" in page
    assert "is not a whole number" in page  # the quantity, at its own field
    assert 'id="f-amount-error"' in page
    assert 'id="f-quantity-error"' in page
    if typed in {"1450.50", "1,2,3", "1e5", "NaN"}:  # shown back as typed, not "corrected"
        assert f'name="amount" type="text" value="{typed}"' in page
    assert '<span class="count">(0)</span>' in ada.get(DEALS).text  # nothing was saved


def test_preferences_are_chosen_on_their_page(shop: Instance) -> None:
    with signed_in(shop, "bob", PASSWORD) as bob:
        page = bob.get("/app/_preferences")
        assert page.status_code == 200
        assert 'href="/app/_preferences"' in page.text  # the user's name links to it
        assert '<option value="de_CH">German (Switzerland) — de_CH</option>' in page.text
        assert '<dd id="sample-money">€1,450,000.00</dd>' in page.text
        token = csrf_of(page)
        refused = bob.post(
            "/app/_preferences", data={"locale": "de_DE", "timezone": "UTC"}
        )  # no CSRF token
        assert refused.status_code == 403
        for locale, zone in [
            ("xx_YY", ""),
            ("de\x00DE", ""),
            ("de_DE", "Mars/Olympus"),
            ("d" * 5000, ""),
            ("", "Europe/" + "x" * 5000),
        ]:
            bad = bob.post(
                "/app/_preferences",
                data={"csrf_token": token, "locale": locale, "timezone": zone},
            )
            assert bad.status_code == 422, (locale[:20], zone[:20])
            assert "is not a locale" in bad.text or "is not a time zone" in bad.text
        saved = bob.post(
            "/app/_preferences",
            data={"csrf_token": token, "locale": "de_CH", "timezone": "Europe/Zurich"},
            follow_redirects=False,
        )
        assert saved.status_code == 303
        page = bob.get(saved.headers["location"]).text
        assert "Saved your preferences." in page
        assert f'<dd id="sample-money">EUR{NBSP}1&#39;450&#39;000.00</dd>' in page  # escaped '
        assert '<dd id="sample-moment">06.12.2026, 15:30 MEZ</dd>' in page or (
            '<dd id="sample-moment">06.12.2026, 15:30 CET</dd>' in page
        )
        assert '<option value="de_CH" selected>' in page
        cleared = bob.post(
            "/app/_preferences", data={"csrf_token": token, "locale": "", "timezone": ""}
        )
        assert '<dd id="sample-money">€1,450,000.00</dd>' in cleared.text


def test_the_export_button_gives_the_csv_for_people(ada: TestClient) -> None:
    status, _ = save(ada, f"{DEALS}/new", name="=1+2", amount="1.450,5", currency="EUR")
    assert status == 303
    listed = ada.get(DEALS).text
    link = re.search(r'href="(/app/deals/deal/export\.csv\?[^"]*)" download', listed)
    assert link is not None
    csv = ada.get(link.group(1).replace("&amp;", "&"))
    assert csv.status_code == 200
    lines = csv.text.removeprefix("\ufeff").splitlines()
    assert lines[0].startswith("ID;Name;Industry;Currency;Amount;")
    assert lines[1].startswith(f"1;'=1+2;;EUR;1.450,50{NBSP}€;")  # a formula stays text


def test_a_lines_money_is_in_its_deals_currency(shop: Instance, ada: TestClient) -> None:
    """``currency: parent.currency`` (docs/locales.md "Money on lines"): the form's lines
    table shows a line's computed total in the deal's currency, its inputs the number
    alone; a USD deal's lines in dollars; each reader in their locale."""
    token = bearer(issue_token(shop.settings.database_url, "ada"))
    made = {}
    for currency in ("EUR", "USD"):
        answer = ada.post(
            "/api/v1/deals/deal",
            headers=token,
            json={
                "name": f"Deal in {currency}",
                "currency": currency,
                "lines": [{"product": "Consulting", "hours": "2", "price": "725"}],
            },
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["data"]["lines"][0]["total"] == "1450.00"  # the API: a number
        made[currency] = answer.json()["data"]["id"]
    euros = ada.get(f"{DEALS}/{made['EUR']}").text
    assert totals(euros) == [f"1.450,00{NBSP}€"]
    assert re.search(r'name="lines\[0\]\.price" type="text" value="725,00"', euros)
    assert totals(ada.get(f"{DEALS}/{made['USD']}").text) == [f"1.450,00{NBSP}$"]
    with signed_in(shop, "bob", PASSWORD) as bob:
        assert totals(bob.get(f"{DEALS}/{made['EUR']}").text) == ["€1,450.00"]
    exported = ada.get(f"{DEALS}/export.csv", params={"for": "people"}).text
    header, first = exported.removeprefix("\ufeff").splitlines()[:2]
    assert "Lines" not in header  # lines are not a column people read, as in the list
    assert "Consulting" not in first


def totals(page: str) -> list[str]:
    """The line totals a form's lines table shows (its blank new line's left out)."""
    cells = re.findall(r'<td data-label="Total"[^>]*>\s*([^<]*?)\s*</td>', page)
    return [cell for cell in cells if cell]

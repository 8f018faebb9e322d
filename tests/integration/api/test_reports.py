"""Reports through HTTP on a small pack, on SQLite and PostgreSQL: the report's roles and
its entities' grants both apply (a role granted the report but not the entity is refused;
a row-level ``where`` narrows the figures); optional, choice and reference parameters;
totals that cannot be computed are empty; lines past a section's limit leave its subtotal
whole; labels that look like spreadsheet formulas are quoted in the CSV."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from tests.conftest import pack_instance
from tests.support.identity import bearer, issue_token
from tests.support.web import signed_in

if TYPE_CHECKING:
    from pathlib import Path

    from fastapi.testclient import TestClient

    from tests.conftest import Instance

API = "/api/v1/shop"
PASSWORD = "correct horse battery"
FILES = {
    "module.yaml": 'name: shop\nversion: "1.0.0"\n',
    "entities/category.yaml": "title: name\nfields:\n  name: {type: string, required: true}\n",
    "entities/entry.yaml": """\
fields:
  day: {type: date, required: true}
  category: {type: reference, to: category}
  kind: {type: enum, values: [income, expense]}
  amount: {type: decimal, scale: 2}
""",
    "roles.yaml": """\
roles:
  bookkeeper:
    grants:
      - {entity: category, actions: [read]}
      - {entity: entry, actions: [read]}
  income_clerk:
    grants:
      - {entity: entry, actions: [read], where: "kind == 'income'"}
  auditor:
    grants:
      - {entity: category, actions: [read]}
""",
    "reports/result.yaml": """\
roles: [bookkeeper, income_clerk, auditor]
parameters:
  from: {type: date, default: "2026-01-01"}
  to: {type: date, default: "{{ add_days(from, 364) }}"}
  kind: {type: choice, values: [income, expense], required: false}
  category: {type: reference, to: category, required: false}
sections:
  - name: lines
    entity: entry
    filter:
      day__gte: "{{ from }}"
      day__lte: "{{ to }}"
      kind: "{{ kind }}"
      category: "{{ category }}"
    group_by: category
    measure: amount__sum
    limit: 2
  - name: income
    entity: entry
    filter: {kind: income, day__gte: "{{ from }}", day__lte: "{{ to }}"}
    measure: amount__sum
  - name: expense
    entity: entry
    filter: {kind: expense, day__gte: "{{ from }}", day__lte: "{{ to }}"}
    measure: amount__sum
totals:
  - {name: all, value: income + expense}
  - {name: ratio, value: expense / income}
""",
}


def made(client: TestClient, entity: str, body: dict[str, Any]) -> str:
    response = client.post(f"{API}/{entity}", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


def shop(db_url: str, root: Path) -> tuple[Instance, dict[str, str]]:
    instance = pack_instance(root, db_url, "shop", FILES)
    with instance.client() as client:
        names = ["=HYPERLINK(1)", "Rent", "Sales", "Travel"]
        ids = {name: made(client, "category", {"name": name}) for name in names}
        for day, name, kind, amount in [
            ("2026-01-10", "Sales", "income", "500.00"),
            ("2026-02-10", "Sales", "income", "1200.00"),
            ("2026-02-11", "Rent", "expense", "-800.00"),
            ("2026-02-12", "Travel", "expense", "-150.00"),
            ("2026-02-13", "=HYPERLINK(1)", "expense", "-1.00"),
        ]:
            body = {"day": day, "category": ids[name], "kind": kind, "amount": amount}
            made(client, "entry", body)
    return instance, ids


def run(client: TestClient, headers: dict[str, str], query: str = "") -> Any:
    response = client.get(f"{API}/_reports/result?{query}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def figures(data: dict[str, Any]) -> dict[str, Any]:
    return {
        **{s["name"]: s["total"]["amount"] for s in data["sections"]},
        **{t["name"]: t["values"]["amount"] for t in data["totals"]},
    }


def test_roles_grants_and_row_access(db_url: str, tmp_path: Path) -> None:
    instance, ids = shop(db_url, tmp_path)
    with instance.client(signed_in=False) as client:
        keeper = bearer(instance.token("kim", ("bookkeeper",)))
        data = run(client, keeper, "from=2026-02-01&to=2026-02-28")
        assert figures(data) == {
            "lines": "249.00",
            "income": "1200.00",
            "expense": "-951.00",
            "all": "249.00",
            "ratio": "-0.79",  # -951 / 1200, to the amounts' two decimals
        }
        # the income clerk reads income entries only: the expenses are not theirs to see
        clerk = bearer(instance.token("ian", ("income_clerk",)))
        data = run(client, clerk, "from=2026-02-01&to=2026-02-28")
        assert figures(data)["expense"] == "0.00"
        assert figures(data)["income"] == "1200.00"
        # the categories are not readable to the clerk: a line is labelled by its id
        lines = data["sections"][0]["lines"]
        assert [(x["label"], x["values"]) for x in lines] == [(ids["Sales"], {"amount": "1200.00"})]
        # granted the report, not the entries
        auditor = bearer(instance.token("aud", ("auditor",)))
        response = client.get(f"{API}/_reports/result", headers=auditor)
        assert response.status_code == 403, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert client.get(f"{API}/_reports", headers=auditor).json()["data"][0]["name"] == "result"


def test_parameters_limits_and_empty_totals(db_url: str, tmp_path: Path) -> None:
    instance, ids = shop(db_url, tmp_path)
    with instance.client() as client:
        admin: dict[str, str] = {}
        # lines past the limit of 2: cut, but the subtotal is of every record
        data = run(client, admin, "from=2026-01-01&to=2026-12-31")
        lines = data["sections"][0]
        assert (len(lines["lines"]), lines["truncated"]) == (2, True)
        assert lines["total"] == {"amount": "749.00"}
        # an optional choice and an optional reference narrow the lines when given
        data = run(
            client, admin, f"from=2026-01-01&to=2026-12-31&kind=expense&category={ids['Rent']}"
        )
        assert data["sections"][0]["lines"] == [
            {
                "key": data["sections"][0]["lines"][0]["key"],
                "label": "Rent",
                "values": {"amount": "-800.00"},
            }
        ]
        assert data["parameters_used"]["kind"] == "expense"
        # a default reads the parameters before it
        assert run(client, admin, "from=2026-02-01")["parameters_used"] == {
            "from": "2026-02-01",
            "to": "2027-01-31",
            "kind": None,
            "category": None,
        }
        # a period without income: the ratio divides by zero and is empty
        data = run(client, admin, "from=2026-02-11&to=2026-02-12")
        assert figures(data)["ratio"] is None
        assert figures(data)["income"] == "0.00"
        for query in ("kind=both", "category=0", "category=x", "category=" + "9" * 30):
            response = client.get(f"{API}/_reports/result?{query}")
            assert response.status_code == 400, (query, response.text)
        # the CSV quotes a label that starts like a formula
        response = client.get(f"{API}/_reports/result?from=2026-02-01&to=2026-02-28&format=csv")
        rows = list(csv.reader(io.StringIO(response.text)))
        assert ["Lines", "'=HYPERLINK(1)", "-1.00"] in rows
        assert rows[-2:] == [["", "All", "249.00"], ["", "Ratio", "-0.79"]]


def test_the_web_form_picks_a_reference_by_title(db_url: str, tmp_path: Path) -> None:
    """A reference parameter is a record form's picker: a search over the target's
    ``_options`` and a drop-down showing the chosen record's title (to a user who may read
    it; its id to one who may not). Its search box belongs to no form, so that showing the
    report does not send a ``q`` the report does not take."""
    instance, ids = shop(db_url, tmp_path)
    url = instance.settings.database_url
    issue_token(url, "kim", ("bookkeeper",), password=PASSWORD)
    issue_token(url, "ian", ("income_clerk",), password=PASSWORD)
    with signed_in(instance, "kim", PASSWORD) as client:
        page = client.get(f"/app/_reports/shop/result?category={ids['Rent']}")
        assert page.status_code == 200, page.text[:800]
        text = " ".join(page.text.split())
        assert 'hx-get="/app/shop/category/_options"' in text
        assert 'form="param-category-search-only"' in text
        assert '<select name="category" id="param-category"' in text
        assert f'<option value="{ids["Rent"]}" selected>Rent</option>' in text
        assert '<label for="param-category">Category</label>' in text
        options = client.get("/app/shop/category/_options?q=Tra")
        assert options.status_code == 200
        assert f'value="{ids["Travel"]}"' in options.text
        assert f'value="{ids["Rent"]}"' not in options.text
        # the search box's q, were it sent with the form, is no parameter of the report
        assert client.get("/app/_reports/shop/result?q=Rent").status_code == 400
        # none chosen: the empty choice alone; a bad id is shown back as typed
        empty = client.get("/app/_reports/shop/result")
        assert "selected>" not in empty.text.split('name="category"')[1].split("</select>")[0]
        bad = client.get("/app/_reports/shop/result?category=x%3Cb%3E")
        assert bad.status_code == 400
        assert "x<b>" not in bad.text
        assert 'value="x&lt;b&gt;" selected>#x&lt;b&gt;</option>' in bad.text
    with signed_in(instance, "ian", PASSWORD) as client:  # may not read the categories
        page = client.get(f"/app/_reports/shop/result?category={ids['Rent']}")
        assert page.status_code == 200, page.text[:800]
        assert f'<option value="{ids["Rent"]}" selected>#{ids["Rent"]}</option>' in page.text
        assert ">Rent<" not in page.text


def test_the_reports_of_an_unknown_pack_are_a_404(db_url: str, tmp_path: Path) -> None:
    """``GET /api/v1/{pack}/_reports`` of a pack the instance does not have is a 404 naming
    it (a mistyped pack read as 'no reports' before); a pack without reports lists none."""
    instance, _ = shop(db_url, tmp_path)
    with instance.client() as client:
        assert client.get(f"{API}/_reports").json()["data"][0]["name"] == "result"
        for pack in ("shops", "%00", "x" * 300):
            response = client.get(f"/api/v1/{pack}/_reports")
            assert response.status_code == 404, (pack[:20], response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            assert "no pack" in response.json()["detail"]


SPREAD = """\
roles: [bookkeeper]
columns:
  - {name: average}
  - {name: highest}
  - {name: first}
  - {name: entries}
sections:
  - name: spread
    entity: entry
    group_by: category
    measure: {average: amount__avg, highest: amount__max, first: day__min, entries: count}
  - name: none
    entity: entry
    filter: {day__gt: "2030-01-01"}
    group_by: category
    measure: {average: amount__avg, highest: amount__max, first: day__min, entries: count}
"""


def test_a_subtotal_of_averages_minima_and_maxima_is_of_every_record(
    db_url: str, tmp_path: Path
) -> None:
    """A grouped section's subtotal is its measure over every record, as the ungrouped
    ``_aggregate`` computes it: the average of all the amounts, the highest, the first day
    (not the sum of the groups' averages and maxima, nor 0 for a date); with no record, an
    empty figure (a count: 0)."""
    instance = pack_instance(tmp_path, db_url, "shop", {**FILES, "reports/spread.yaml": SPREAD})
    with instance.client() as client:
        category = made(client, "category", {"name": "Sales"})
        other = made(client, "category", {"name": "Rent"})
        for day, chosen, amount in [
            ("2026-01-10", category, "500.00"),
            ("2026-02-10", category, "1200.00"),
            ("2026-02-11", other, "-800.00"),
        ]:
            made(client, "entry", {"day": day, "category": chosen, "amount": amount})
        whole = client.get(f"{API}/entry/_aggregate?measures=amount__avg,amount__max,day__min")
        assert whole.status_code == 200, whole.text
        (row,) = whole.json()["data"]
        response = client.get(f"{API}/_reports/spread")
        assert response.status_code == 200, response.text
        spread, none = response.json()["data"]["sections"]
        assert len(spread["lines"]) == 2
        assert spread["total"] == {
            "average": row["amount__avg"],
            "highest": "1200.00",
            "first": "2026-01-10",
            "entries": 3,
        }
        assert none["total"] == {"average": None, "highest": None, "first": None, "entries": 0}
        rows = list(csv.reader(io.StringIO(client.get(f"{API}/_reports/spread?format=csv").text)))
        assert ["None", "Total", "", "", "", "0"] in rows


VISITS = """\
roles: [admin]
parameters:
  from: {type: date, default: "2026-02-01"}
  to: {type: date, default: "2026-02-28"}
sections:
  - name: inclusive
    entity: visit
    filter: {at__gte: "{{ from }}", at__lte: "{{ to }}"}
    measure: amount__sum
  - name: exclusive
    entity: visit
    filter: {at__gt: "{{ from }}", at__lt: "{{ to }}"}
    measure: amount__sum
"""


def test_a_date_parameter_filters_a_datetime_by_the_instances_days(
    db_url: str, tmp_path: Path
) -> None:
    """A date parameter filtering a datetime field means whole days of the instance's time
    zone: ``__gte`` from the day's start, ``__lte`` through its end, ``__gt`` from the next
    day's start, ``__lt`` before the day's start (every run was a 400: the API takes a
    moment with an offset); the last day of the calendar is no bound."""
    files = {
        **FILES,
        "entities/visit.yaml": "fields:\n  at: {type: datetime}\n  amount: {type: integer}\n",
        "reports/visits.yaml": VISITS,
    }
    instance = pack_instance(tmp_path, db_url, "shop", files, timezone="Europe/Berlin")
    with instance.client() as client:
        for at, amount in [
            ("2026-01-31T22:59:00Z", 1),  # 31 January, 23:59 in Berlin
            ("2026-01-31T23:30:00Z", 10),  # 1 February, 00:30
            ("2026-02-01T23:00:00Z", 100),  # 2 February, 00:00
            ("2026-02-27T22:59:00Z", 1000),  # 27 February, 23:59
            ("2026-02-28T22:59:00Z", 10000),  # 28 February, 23:59
            ("2026-02-28T23:00:00Z", 100000),  # 1 March, 00:00
        ]:
            made(client, "visit", {"at": at, "amount": amount})
        response = client.get(f"{API}/_reports/visits")
        assert response.status_code == 200, response.text
        totals = {s["name"]: s["total"]["amount"] for s in response.json()["data"]["sections"]}
        assert totals == {"inclusive": 11110, "exclusive": 1100}
        wide = client.get(f"{API}/_reports/visits?from=0001-01-01&to=9999-12-31")
        assert wide.status_code == 200, wide.text
        assert wide.json()["data"]["sections"][0]["total"]["amount"] == 111111


BY_CATEGORY = """\
roles: [bookkeeper]
parameters:
  category: {type: reference, to: category}
sections:
  - name: entries
    entity: entry
    filter: {category: "{{ category }}"}
    measure: amount__sum
"""


def test_the_web_form_of_a_parameter_without_default_opens_without_an_error(
    db_url: str, tmp_path: Path
) -> None:
    """A report whose required parameter has no default opens on its form, nothing run and
    no error (it said the parameter was required, with a 400, before the user could pick
    one); the form sent without it is the 400."""
    files = {**FILES, "reports/by_category.yaml": BY_CATEGORY}
    instance = pack_instance(tmp_path, db_url, "shop", files)
    issue_token(instance.settings.database_url, "kim", ("bookkeeper",), password=PASSWORD)
    with instance.client() as client:
        rent = made(client, "category", {"name": "Rent"})
        made(client, "entry", {"day": "2026-02-11", "category": rent, "amount": "-800.00"})
    with signed_in(instance, "kim", PASSWORD) as client:
        page = client.get("/app/_reports/shop/by_category")
        assert page.status_code == 200, page.text[:800]
        assert 'role="alert"' not in page.text
        assert '<table class="report">' not in page.text
        sent = client.get("/app/_reports/shop/by_category?category=")
        assert sent.status_code == 400
        assert "&#39;category&#39; is required (Category)" in sent.text
        shown = client.get(f"/app/_reports/shop/by_category?category={rent}")
        assert shown.status_code == 200
        assert "800.00" in shown.text

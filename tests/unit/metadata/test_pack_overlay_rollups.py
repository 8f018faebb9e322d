"""What a pack's overlay may add besides fields and rules: ``rollups:`` on the overlaid
entity (kept fields of the shipping pack or its dependencies), and e-mail rules whose
templates come from the shipping pack's ``templates/``. Mistakes at file:line:col."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from metadata import DefinitionError, EmailAction, load_project

PACKS = {
    "packs/sales/module.yaml": 'name: sales\nversion: "1.0.0"\n',
    "packs/sales/entities/deal.yaml": """\
        fields:
          name: {type: string}
          ordered: {type: decimal, read_only: true}
          orders: {type: integer, read_only: true}
        """,
    "packs/orders/module.yaml": 'name: orders\nversion: "1.0.0"\n',
    "packs/orders/entities/order.yaml": """\
        document: true
        fields:
          total: {type: decimal}
        """,
    "packs/glue/module.yaml": 'name: glue\nversion: "1.0.0"\ndepends: [sales, orders]\n',
    "packs/glue/templates/won.txt": "Subject: Won {{ name }}\nThanks.\n",
    "packs/glue/overlays/orders/order.yaml": """\
        fields:
          deal: {type: reference, to: sales.deal, on_delete: set_null}
        rollups:
          - {to: sales.deal.ordered, via: deal, sum: total, where: {docstatus: submitted}}
          - {to: sales.deal.orders, via: deal, count: true}
        """,
    "packs/glue/overlays/sales/deal.yaml": """\
        rules:
          - name: won_mail
            on: update
            actions:
              - email: {to: "a@example.test", template: won.txt}
        """,
}


def write(files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = Path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


@pytest.fixture(autouse=True)
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(PACKS)


def test_an_overlay_adds_rollups_and_mails_with_its_own_templates() -> None:
    project = load_project(["glue"], [Path("packs")])
    order = project.entity("orders.order")
    kept = {(r.target, r.field, r.function.value) for r in order.rollups}
    assert kept == {
        ("sales.deal", "ordered", "sum"),
        ("sales.deal", "orders", "count"),
    }
    (rule,) = project.entity("sales.deal").rules
    (action,) = rule.actions
    assert isinstance(action, EmailAction)
    assert action.template_source == "Subject: Won {{ name }}\nThanks.\n"


def test_an_overlay_keeps_only_fields_of_its_packs_dependencies() -> None:
    write(
        {
            "packs/glue/module.yaml": 'name: glue\nversion: "1.0.0"\ndepends: [orders]\n',
            "packs/glue/overlays/orders/order.yaml": """\
                fields:
                  note: {type: string}
                rollups:
                  - {to: sales.deal.orders, via: note, count: true}
                """,
        }
    )
    Path("packs/glue/overlays/sales/deal.yaml").unlink()
    with pytest.raises(DefinitionError) as raised:
        load_project(["glue", "sales"], [Path("packs")])
    assert [str(p) for p in raised.value.problems] == [
        "packs/glue/overlays/orders/order.yaml:4:10: entity 'sales.deal' belongs to pack "
        "'sales', which pack 'glue' does not depend on: add 'sales' to depends in module.yaml",
    ]

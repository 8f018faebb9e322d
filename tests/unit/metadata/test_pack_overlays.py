"""Overlays a pack ships onto the entities of packs it depends on
(``<pack>/overlays/<other pack>/<entity>.yaml``, docs/customization.md): the inventory pack
adds ``price_list`` to contacts.account. They follow the customization rules, apply before
the instance's own customization, and are refused for packs the pack does not depend on."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from metadata import DefinitionError, FieldType, load_project

PACKS = {
    "packs/contacts/module.yaml": 'name: contacts\nversion: "1.0.0"\n',
    "packs/contacts/entities/account.yaml": """\
        fields:
          name: {type: string, required: true, max_length: 200}
        """,
    "packs/stock/module.yaml": 'name: stock\nversion: "1.0.0"\ndepends: [contacts]\n',
    "packs/stock/entities/price_list.yaml": "fields:\n  name: {type: string}\n",
    "packs/stock/overlays/contacts/account.yaml": """\
        fields:
          price_list: {type: reference, to: stock.price_list, on_delete: set_null}
          name: {max_length: 120}
        form:
          sections: [{name: pricing, label: Pricing, fields: [price_list]}]
        """,
    "packs/other/module.yaml": 'name: other\nversion: "1.0.0"\n',
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


def problems(enabled: list[str], custom: Path | None = None) -> list[str]:
    try:
        load_project(enabled, [Path("packs")], customizations=custom)
    except DefinitionError as error:
        return [str(p) for p in error.problems]
    return []


def test_a_pack_adds_a_field_to_a_dependency_and_tightens_another() -> None:
    project = load_project(["stock"], [Path("packs")])
    account = project.entity("contacts.account")
    assert account.fields["price_list"].type is FieldType.REFERENCE
    assert account.fields["price_list"].to == "stock.price_list"
    assert account.fields["price_list"].origin == "packs/stock/overlays/contacts/account.yaml"
    assert account.fields["name"].max_length == 120
    assert account.customization is None  # the instance has not customized it
    assert account.form is not None
    assert [s.name for s in account.form.sections][-1] == "pricing"


def test_without_the_pack_the_dependency_is_as_it_was() -> None:
    project = load_project(["contacts"], [Path("packs")])
    assert "price_list" not in project.entity("contacts.account").fields


def test_the_instance_customizes_on_top_of_the_pack_overlay() -> None:
    write({"custom/contacts/account.yaml": "fields:\n  price_list: {label: Tariff}\n"})
    project = load_project(["stock"], [Path("packs")], customizations=Path("custom"))
    account = project.entity("contacts.account")
    assert account.fields["price_list"].label == "Tariff"
    assert account.customization == "custom/contacts/account.yaml"


def test_an_overlay_loosening_a_field_is_refused_at_its_key() -> None:
    write({"packs/stock/overlays/contacts/account.yaml": "fields:\n  name: {max_length: 300}\n"})
    found = problems(["stock"])
    assert len(found) == 1, found
    assert found[0].startswith("packs/stock/overlays/contacts/account.yaml:2:22: max_length 300")


def test_an_overlay_of_a_pack_not_depended_on_is_refused() -> None:
    write({"packs/other/overlays/stock/price_list.yaml": "fields:\n  code: {type: string}\n"})
    found = problems(["stock", "other"])
    assert found == [
        "packs/other/overlays/stock/price_list.yaml:1:1: overlay of pack 'stock', which pack "
        "'other' does not depend on: add 'stock' to depends in module.yaml"
    ]


def test_an_overlay_of_an_unknown_entity_is_refused() -> None:
    write({"packs/stock/overlays/contacts/acount.yaml": "fields:\n  code: {type: string}\n"})
    found = problems(["stock"])
    assert len(found) == 1, found
    assert "customization of unknown entity 'contacts.acount'; did you mean 'account'?" in found[0]

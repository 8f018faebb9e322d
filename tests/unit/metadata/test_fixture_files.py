"""Fixture and demo files of other packs' entities: a pack's ``demo/`` (or ``data/``) may
hold ``<pack>.<entity>.yaml`` for an entity of a pack it depends on. What loads, in which
order (every pack's own files first, references first; a read-only reference orders
nothing), and every mistake as a problem of its file."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from metadata import DefinitionError, load_fixture_files, load_project

PACKS = {
    "packs/crm/module.yaml": 'name: crm\nversion: "1.0.0"\n',
    "packs/crm/entities/company.yaml": """\
        fields:
          name: {type: string, required: true, unique: true}
          tier: {type: string}
          # filled by a rule, never by a record: no reason to load people first
          main_contact: {type: reference, to: person, read_only: true}
        """,
    "packs/crm/entities/person.yaml": """\
        fields:
          email: {type: string, required: true, unique: true}
          company: {type: reference, to: company}
        """,
    "packs/shop/module.yaml": 'name: shop\nversion: "1.0.0"\ndepends: [crm]\n',
    "packs/shop/entities/order.yaml": """\
        fields:
          code: {type: string, required: true, unique: true}
          company: {type: reference, to: crm.company}
        """,
    "packs/glue/module.yaml": 'name: glue\nversion: "1.0.0"\ndepends: [shop]\n',
    "packs/glue/entities/note.yaml": """\
        fields:
          code: {type: string, required: true, unique: true}
          order: {type: reference, to: shop.order}
        """,
    "packs/crm/demo/company.yaml": "key: name\nrecords:\n  - {name: Acme}\n",
    "packs/crm/demo/person.yaml": (
        "key: email\nrecords:\n  - {email: a@acme.test, company: {name: Acme}}\n"
    ),
    "packs/shop/demo/order.yaml": "key: code\nrecords:\n  - {code: O1, company: {name: Acme}}\n",
    # the glue pack's demo: its own entity, and records of the packs it depends on,
    # directly (shop) and through shop (crm)
    "packs/glue/demo/note.yaml": "key: code\nrecords:\n  - {code: N1, order: {code: O2}}\n",
    "packs/glue/demo/shop.order.yaml": (
        "key: code\nrecords:\n  - {code: O2, company: {name: Beta}}\n  - {code: O1}\n"
    ),
    "packs/glue/demo/crm.company.yaml": (
        "key: name\nrecords:\n  - {name: Beta}\n  - {name: Acme, tier: gold}\n"
    ),
}


@pytest.fixture(autouse=True)
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(PACKS)


def write(files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = Path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def problems(*packs: str) -> list[str]:
    with pytest.raises(DefinitionError) as raised:
        load_project(list(packs), [Path("packs")], fixture_folders=("demo",))
    return [str(p) for p in raised.value.problems]


def test_other_packs_records_load_after_every_packs_own() -> None:
    project = load_project(["glue"], [Path("packs")], fixture_folders=("demo",))
    files = load_fixture_files(project, "demo")
    assert [(f.pack, f.entity, f.extends) for f in files] == [
        ("crm", "crm.company", False),
        ("crm", "crm.person", False),
        ("shop", "shop.order", False),
        ("glue", "glue.note", False),
        # then the glue pack's records of crm and shop, referenced entities first
        ("glue", "crm.company", True),
        ("glue", "shop.order", True),
    ]
    assert files[4].records == ({"name": "Beta"}, {"name": "Acme", "tier": "gold"})
    assert files[-1].source.endswith("glue/demo/shop.order.yaml")


def test_without_the_depending_pack_its_files_are_not_read() -> None:
    project = load_project(["shop"], [Path("packs")], fixture_folders=("demo",))
    assert [f.entity for f in load_fixture_files(project, "demo")] == [
        "crm.company",
        "crm.person",
        "shop.order",
    ]


def test_a_file_of_a_pack_not_depended_on_is_refused() -> None:
    write({"packs/shop/demo/glue.note.yaml": "key: code\nrecords: []\n"})
    (problem,) = problems("glue")
    assert "packs/shop/demo/glue.note.yaml" in problem
    assert "holds records of pack 'glue', which pack 'shop' does not depend on" in problem


def test_an_unknown_entity_of_a_dependency_is_named_with_a_suggestion() -> None:
    write({"packs/glue/demo/shop.ordr.yaml": "key: code\nrecords: []\n"})
    (problem,) = problems("glue")
    assert "glue/demo/shop.ordr.yaml" in problem
    assert "no entity 'shop.ordr'" in problem
    assert "shop.order" in problem  # did you mean


def test_the_key_must_be_unique_in_another_packs_entity_too() -> None:
    write({"packs/glue/demo/crm.company.yaml": "key: tier\nrecords: []\n"})
    (problem,) = problems("glue")
    assert "glue/demo/crm.company.yaml" in problem
    assert "key 'tier' is not a unique field of crm.company" in problem

"""Customizations (overlays, SPEC §3.6): ``<customizations>/<pack>/<entity>.yaml`` adds fields
to and tightens the entities of enabled packs; every loosening, removal or type change is
refused at its file:line:col, and an overlay keeps applying when its pack is upgraded."""

from __future__ import annotations

import json
import shutil
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from metadata import DefinitionError, FieldType, OnDelete, _schemas, all_schemas, load_project
from metadata._fieldkeys import TYPE_KEYS
from metadata._overlays import _RULES

if TYPE_CHECKING:
    from metadata import ProjectDef

ACCOUNT = """\
label: Account
title: name
fields:
  name: {type: string, required: true, min_length: 2, max_length: 200}
  code: {type: string, pattern: "^[A-Z]+$"}
  email: {type: email}
  notes: {type: text}
  employees: {type: integer, min: 0, max: 100000}
  revenue: {type: decimal, precision: 14, scale: 2, min: 0}
  status: {type: enum, values: [lead, active, dormant], default: lead}
  tax_id: {type: string, unique: true, index: true, read_only: true}
  region: {type: string, required_if: "status == 'active'"}
  parent: {type: reference, to: account, on_delete: set_null}
  number: {type: autonumber, format: "A-{#####}"}
  score: {type: integer, computed: "employees * 2"}
  lines: {type: children, entity: account_line}
indexes: [[status]]
"""

PACKS = {
    "packs/contacts/module.yaml": 'name: contacts\nversion: "1.0.0"\n',
    "packs/contacts/entities/account.yaml": ACCOUNT,
    "packs/contacts/entities/account_line.yaml": "fields:\n  note: {type: string}\n",
    "packs/contacts/entities/contact.yaml": "fields:\n  full_name: {type: string}\n",
    "packs/sales/module.yaml": 'name: sales\nversion: "1.0.0"\ndepends: [contacts]\n',
    "packs/sales/entities/deal.yaml": "fields:\n  subject: {type: string}\n",
    "packs/billing/module.yaml": 'name: billing\nversion: "1.0.0"\n',
    "packs/billing/entities/invoice.yaml": "fields:\n  total: {type: decimal}\n",
}
OVERLAY = "custom/contacts/account.yaml"


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An instance folder with three packs (contacts and sales enabled) and no overlays."""
    monkeypatch.chdir(tmp_path)
    write(PACKS)
    return tmp_path


def write(files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = Path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def load(modules: tuple[str, ...] = ("contacts", "sales")) -> ProjectDef:
    return load_project(list(modules), [Path("packs")], customizations=Path("custom"))


def problems(modules: tuple[str, ...] = ("contacts", "sales")) -> list[str]:
    with pytest.raises(DefinitionError) as raised:
        load(modules)
    return [str(p) for p in raised.value.problems]


# --- adding fields -------------------------------------------------------------------------


def test_overlay_adds_fields_of_several_types_after_the_pack_fields(instance: Path) -> None:
    write(
        {
            OVERLAY: """\
            label: Customer
            description: Someone who buys from us
            title: nickname
            fields:
              loyalty_tier: {type: enum, values: [bronze, silver, gold], default: bronze}
              nickname: {type: string, max_length: 40, label: Nick}
              credit_limit: {type: decimal, precision: 12, scale: 2, min: 0}
              since: {type: date}
              newsletter: {type: boolean, default: false}
              best_contact: {type: reference, to: contact, on_delete: set_null}
              last_deal: {type: reference, to: sales.deal}
              customer_no: {type: autonumber, format: "C-{#####}"}
              discount: {type: integer, computed: "credit_limit / 100"}
            indexes: [[loyalty_tier, since]]
            unique: [[nickname]]
            """
        }
    )
    account = load().entity("contacts.account")

    pack_fields = [*ACCOUNT_FIELD_NAMES]
    added = [
        "loyalty_tier",
        "nickname",
        "credit_limit",
        "since",
        "newsletter",
        "best_contact",
        "last_deal",
        "customer_no",
        "discount",
    ]
    assert list(account.fields) == pack_fields + added
    assert account.label == "Customer"
    assert account.label_plural == "Customers"  # the pack sets none: follows the new label
    assert account.description == "Someone who buys from us"
    assert account.title == "nickname"
    assert account.source == "packs/contacts/entities/account.yaml"
    assert account.customization == OVERLAY
    assert account.indexes == (("status",), ("loyalty_tier", "since"))
    assert account.unique == (("nickname",),)
    assert account.unique_fields() == ("tax_id", "nickname")

    tier = account.field("loyalty_tier")
    assert (tier.type, tier.values, tier.default) == (
        FieldType.ENUM,
        ("bronze", "silver", "gold"),
        "bronze",
    )
    assert tier.origin == OVERLAY
    assert account.field("name").origin == "packs/contacts/entities/account.yaml"
    assert (account.field("nickname").max_length, account.field("nickname").label) == (40, "Nick")
    credit = account.field("credit_limit")
    assert (credit.precision, credit.scale, credit.min) == (12, 2, Decimal(0))
    assert account.field("newsletter").default is False
    best = account.field("best_contact")
    assert (best.to, best.on_delete) == ("contacts.contact", OnDelete.SET_NULL)
    # Customizations belong to the instance: any enabled pack's entity may be referenced,
    # even one the customized pack does not depend on.
    assert account.field("last_deal").to == "sales.deal"
    assert account.field("customer_no").format == "C-{#####}"
    assert account.field("discount").computed == "credit_limit / 100"
    assert not account.field("discount").is_writable


ACCOUNT_FIELD_NAMES = (
    "name",
    "code",
    "email",
    "notes",
    "employees",
    "revenue",
    "status",
    "tax_id",
    "region",
    "parent",
    "number",
    "score",
    "lines",
)


def test_entities_without_an_overlay_are_untouched(instance: Path) -> None:
    write({OVERLAY: "label: Customer\n"})
    project = load()
    assert project.entity("contacts.contact").customization is None
    assert project.entity("contacts.contact").field("full_name").origin == (
        "packs/contacts/entities/contact.yaml"
    )
    assert project.entity("contacts.account").customization == OVERLAY
    assert project.entity("contacts.account").label_plural == "Customers"


def test_explicit_plural_of_the_pack_is_kept_when_only_the_label_changes(instance: Path) -> None:
    write(
        {
            "packs/contacts/entities/contact.yaml": (
                "label: Person\nlabel_plural: People\nfields:\n  full_name: {type: string}\n"
            ),
            "custom/contacts/contact.yaml": "label: Client\n",
        }
    )
    contact = load().entity("contacts.contact")
    assert (contact.label, contact.label_plural) == ("Client", "People")


def test_a_line_item_entity_can_be_customized_and_keeps_its_parent(instance: Path) -> None:
    write({"custom/contacts/account_line.yaml": "fields:\n  qty: {type: integer, min: 1}\n"})
    line = load().entity("contacts.account_line")
    assert line.parent == "contacts.account"
    assert line.customization == "custom/contacts/account_line.yaml"
    assert list(line.fields) == ["note", "qty"]


def test_missing_customization_folder_and_empty_overlay_change_nothing(instance: Path) -> None:
    plain = load()
    write({OVERLAY: "# nothing customized yet\n"})
    customized = load()
    assert customized.entity("contacts.account").customization == OVERLAY
    assert customized.entity("contacts.account").fields == plain.entity("contacts.account").fields


def test_non_yaml_files_and_hidden_files_are_ignored(instance: Path) -> None:
    write(
        {
            "custom/README.md": "# customizations\n",
            "custom/contacts/notes.txt": "not a definition: {{",
            "custom/contacts/.account.yaml.swp": "garbage: [",
            "custom/contacts/account.yaml.bak": "garbage: [",
        }
    )
    assert load().entity("contacts.account").customization is None


def test_added_fields_get_the_full_field_checks_in_the_overlay_file(instance: Path) -> None:
    write(
        {
            OVERLAY: """\
            fields:
              tier: {type: enum, values: [a, b], default: c}
              id: {type: string}
              partner: {type: reference, to: partnr}
              items: {type: children, entity: account_line}
              bad: {type: string, max_lenght: 3}
              qty: {type: integer, min: 5, max: 1}
            indexes: [[tier, unknwn]]
            title: tier
            """
        }
    )
    assert problems() == [
        f"{OVERLAY}:2:47: default 'c' is not one of the values",
        f"{OVERLAY}:3:3: 'id' is a system field every record has; choose another name",
        f"{OVERLAY}:4:34: unknown entity 'partnr'",
        f"{OVERLAY}:5:17: a customization cannot add a children field; "
        "line-item entities belong to packs",
        f"{OVERLAY}:6:23: unknown key 'max_lenght'; did you mean 'max_length'?",
        f"{OVERLAY}:7:29: min is greater than max",
        f"{OVERLAY}:8:18: indexes: unknown field 'unknwn'",
    ]


def test_overlay_title_and_groups_may_name_only_known_fields(instance: Path) -> None:
    write({OVERLAY: "title: nmae\nunique: [[name, email]]\n"})
    assert problems() == [f"{OVERLAY}:1:8: title 'nmae' is not a field; did you mean 'name'?"]


def test_overlay_groups_the_pack_already_has_are_not_repeated(instance: Path) -> None:
    write({OVERLAY: "indexes: [[status], [email]]\n"})
    assert load().entity("contacts.account").indexes == (("status",), ("email",))


# --- tightening pack fields ----------------------------------------------------------------


def test_every_tightening_is_applied(instance: Path) -> None:
    write(
        {
            OVERLAY: """\
            fields:
              name: {max_length: 80, min_length: 3, label: Account name, help: Legal name}
              code: {pattern: "^[A-Z]+$", required: true}
              email: {max_length: 120, unique: true, index: true, read_only: true}
              notes: {pattern: "^\\\\S", required_if: "status == 'dormant'", min_length: 1}
              employees: {min: 1, max: 5000}
              revenue: {min: "10.50", max: 1000000}
              status: {values: [lead, active], default: active}
              tax_id: {unique: true, index: true, read_only: true}
              parent: {to: contacts.account, on_delete: set_null, label: Parent account}
              number: {index: true}
              region: {default: north}
            """
        }
    )
    account = load().entity("contacts.account")
    name = account.field("name")
    assert (name.max_length, name.min_length, name.label, name.help) == (
        80,
        3,
        "Account name",
        "Legal name",
    )
    assert name.required
    code = account.field("code")
    assert (code.pattern, code.required) == ("^[A-Z]+$", True)
    email = account.field("email")
    assert (email.max_length, email.unique, email.index, email.read_only) == (120, True, True, True)
    notes = account.field("notes")
    assert (notes.pattern, notes.required_if, notes.min_length) == (
        "^\\S",
        "status == 'dormant'",
        1,
    )
    employees = account.field("employees")
    assert (employees.min, employees.max) == (Decimal(1), Decimal(5000))
    revenue = account.field("revenue")
    assert (revenue.min, revenue.max) == (Decimal("10.50"), Decimal(1000000))
    status = account.field("status")
    assert (status.values, status.default) == (("lead", "active"), "active")
    parent = account.field("parent")
    assert (parent.to, parent.on_delete, parent.label) == (
        "contacts.account",
        OnDelete.SET_NULL,
        "Parent account",
    )
    assert account.field("number").index
    assert account.field("region").default == "north"
    assert account.field("region").origin == "packs/contacts/entities/account.yaml"
    assert list(account.fields) == list(ACCOUNT_FIELD_NAMES)


def test_a_tightening_leaves_the_other_pack_keys_alone(instance: Path) -> None:
    plain = load().entity("contacts.account").field("employees")
    write({OVERLAY: "fields:\n  employees: {max: 10}\n"})
    tightened = load().entity("contacts.account").field("employees")
    assert tightened.max == Decimal(10)
    assert tightened.min == plain.min == Decimal(0)
    assert (tightened.label, tightened.type, tightened.origin) == (
        plain.label,
        plain.type,
        plain.origin,
    )


REFUSED = [
    (
        "  name: {max_length: 300}",
        "2:22: max_length 300 loosens the max_length 200 of pack contacts; "
        "a customization may only tighten it",
    ),
    (
        "  name: {min_length: 1}",
        "2:22: min_length 1 loosens the min_length 2 of pack contacts; "
        "a customization may only tighten it",
    ),
    (
        "  name: {required: false}",
        "2:20: required: false loosens the required: true of pack contacts; "
        "a customization may only tighten it",
    ),
    (
        "  tax_id: {unique: false}",
        "2:20: unique: false loosens the unique: true of pack contacts; "
        "a customization may only tighten it",
    ),
    (
        "  tax_id: {index: false}",
        "2:19: index: false loosens the index: true of pack contacts; "
        "a customization may only tighten it",
    ),
    (
        "  tax_id: {read_only: false}",
        "2:23: read_only: false loosens the read_only: true of pack contacts; "
        "a customization may only tighten it",
    ),
    (
        "  employees: {min: -1}",
        "2:20: min -1 loosens the min 0 of pack contacts; a customization may only tighten it",
    ),
    (
        "  employees: {max: 200000}",
        "2:20: max 200000 loosens the max 100000 of pack contacts; "
        "a customization may only tighten it",
    ),
    (
        "  revenue: {min: -0.5}",
        "2:18: min -0.5 loosens the min 0 of pack contacts; a customization may only tighten it",
    ),
    (
        "  email: {max_length: 300}",
        "2:23: max_length 300 loosens the max_length 254 (the default for email) "
        "of pack contacts; "
        "a customization may only tighten it",
    ),
    (
        '  code: {pattern: "^[a-z]+$"}',
        "2:19: pack contacts already sets pattern '^[A-Z]+$'; "
        "a customization may only add a pattern where the pack has none",
    ),
    (
        '  region: {required_if: "true"}',
        "2:25: pack contacts already sets required_if 'status == 'active''; "
        "a customization may only add a required_if where the pack has none",
    ),
    (
        "  status: {values: [lead, closed]}",
        "2:27: 'closed' is not among the values of pack contacts (lead, active, dormant); "
        "a customization may only restrict them",
    ),
    (
        "  status: {values: [active, dormant]}",
        "2:20: the pack's default 'lead' is not among these values; set a default too",
    ),
    (
        "  status: {values: [lead, active], default: dormant}",
        "2:45: default 'dormant' is not one of the values",
    ),
    (
        "  status: {default: closed}",
        "2:21: default 'closed' is not one of the values",
    ),
    (
        "  parent: {to: contact}",
        "2:16: pack contacts sets to 'contacts.account' on field 'parent'; "
        "a customization cannot change it",
    ),
    (
        "  parent: {on_delete: cascade}",
        "2:23: pack contacts sets on_delete 'set_null' on field 'parent'; "
        "a customization cannot change it",
    ),
    (
        "  parent: {required: true}",
        "2:22: on_delete: set_null cannot apply to a required reference",
    ),
    (
        "  revenue: {precision: 10}",
        "2:24: pack contacts sets precision 14 on field 'revenue'; "
        "a customization cannot change it",
    ),
    (
        "  revenue: {scale: 4}",
        "2:20: pack contacts sets scale 2 on field 'revenue'; a customization cannot change it",
    ),
    (
        '  number: {format: "B-{###}"}',
        "2:20: pack contacts sets format 'A-{#####}' on field 'number'; "
        "a customization cannot change it",
    ),
    (
        '  score: {computed: "1"}',
        "2:21: pack contacts sets computed 'employees * 2' on field 'score'; "
        "a customization cannot change it",
    ),
    (
        '  notes: {computed: "1"}',
        "2:21: a customization cannot set computed on pack field 'notes'",
    ),
    ("  score: {required: true}", "2:21: a computed field cannot be required"),
    (
        "  lines: {entity: contact}",
        "2:19: pack contacts sets entity 'contacts.account_line' on field 'lines'; "
        "a customization cannot change it",
    ),
    (
        "  name: {renamed_from: title}",
        "2:24: a customization cannot set renamed_from on pack field 'name'",
    ),
    (
        "  name: {type: integer}",
        "2:16: field 'name' has type string in pack 'contacts'; "
        "a customization cannot change its type",
    ),
    (
        "  employees: {max_length: 3}",
        "2:15: key 'max_length' does not apply to a field of type integer",
    ),
    ("  employees: {min: 500, max: 400}", "2:20: min is greater than max"),
    ('  notes: {pattern: "([a"}', "2:20: pattern is not a valid regular expression"),
    ('  notes: {required_if: "status =="}', "2:24: expression does not parse"),
]


@pytest.mark.parametrize(("entry", "expected"), REFUSED, ids=[e for e, _ in REFUSED])
def test_each_forbidden_change_is_refused_at_its_key(
    instance: Path, entry: str, expected: str
) -> None:
    write({OVERLAY: f"fields:\n{entry}\n"})
    reported = problems()
    assert len(reported) == 1, reported
    assert reported[0].startswith(f"{OVERLAY}:{expected}"), reported[0]


def test_values_equal_to_the_pack_are_not_changes(instance: Path) -> None:
    write(
        {
            OVERLAY: """\
            fields:
              revenue: {precision: 14, scale: 2}
              parent: {to: account, on_delete: set_null}
              score: {computed: "employees * 2"}
              lines: {entity: account_line}
              code: {pattern: "^[A-Z]+$"}
              name: {required: true, max_length: 200, min_length: 2}
              notes: {required: false}
            """
        }
    )
    plain = load_project(["contacts"], [Path("packs")]).entity("contacts.account")
    customized = load().entity("contacts.account")
    assert dict(customized.fields) == dict(plain.fields)


def test_several_refusals_in_one_file_are_all_reported(instance: Path) -> None:
    write(
        {
            OVERLAY: """\
            fields:
              name: {max_length: 300, required: false}
              status: {values: [lead, won, lost]}
            """
        }
    )
    reported = problems()
    assert [line.split(": ", 1)[0] for line in reported] == [
        f"{OVERLAY}:2:22",
        f"{OVERLAY}:2:37",
        f"{OVERLAY}:3:27",
        f"{OVERLAY}:3:32",
    ]


# --- removal, unknown fields, unknown entities and packs -----------------------------------


def test_removing_a_pack_field_is_refused(instance: Path) -> None:
    write(
        {
            OVERLAY: """\
            fields:
              name: null
              email:
              notes: []
              code: false
              brand_new: ~
            """
        }
    )
    assert problems() == [
        f"{OVERLAY}:2:3: a customization cannot remove pack field 'name'",
        f"{OVERLAY}:3:3: a customization cannot remove pack field 'email'",
        f"{OVERLAY}:4:3: a customization cannot remove pack field 'notes'",
        f"{OVERLAY}:5:3: a customization cannot remove pack field 'code'",
        f"{OVERLAY}:6:14: field 'brand_new' needs a mapping of field keys, "
        "such as {type: string}",
    ]


def test_a_change_must_name_a_pack_field(instance: Path) -> None:
    write({OVERLAY: "fields:\n  nmae: {label: Name}\n"})
    assert problems() == [
        f"{OVERLAY}:2:3: 'nmae' is not a field of contacts.account and has no type "
        "(a new field needs one); did you mean 'name'?"
    ]


def test_overlay_for_an_unknown_entity_or_pack(instance: Path) -> None:
    write(
        {
            "custom/contacts/acount.yaml": "label: Client\n",
            "custom/contcts/account.yaml": "label: Client\n",
            "custom/billing/invoice.yaml": "label: Bill\n",
            "custom/contacts/Contact.yaml": "label: Person\n",
            "custom/account.yaml": "label: Client\n",
            "custom/contacts/contact.yaml": "label: Person\n",
            "custom/contacts/contact.yml": "label: Person\n",
        }
    )
    assert problems() == [
        "custom/account.yaml:1:1: a customization belongs in its pack's folder "
        "(<pack>/<entity>.yaml), or is the instance's roles.yaml",
        "custom/billing/invoice.yaml:1:1: customization of pack 'billing', which is not "
        "enabled; add it to modules in tessera.yaml, or remove this file",
        "custom/contacts/Contact.yaml:1:1: customization file name 'Contact' must be "
        "snake_case (a-z, 0-9, single _)",
        "custom/contacts/acount.yaml:1:1: customization of unknown entity 'contacts.acount'; "
        "did you mean 'account'?",
        "custom/contacts/contact.yml:1:1: entity 'contacts.contact' is customized twice",
        "custom/contcts/account.yaml:1:1: customization of unknown module pack 'contcts'; "
        "did you mean 'contacts'?",
    ]


def test_customizations_must_be_a_folder(instance: Path) -> None:
    write({"custom": "label: x\n"})
    assert problems() == [
        "custom:1:1: customizations must be a folder of <pack>/<entity>.yaml files"
    ]


def test_overlay_schema_problems_are_positioned(instance: Path) -> None:
    write(
        {
            OVERLAY: """\
            lable: Client
            fields:
              name: {max_lenght: 80}
            """
        }
    )
    assert problems() == [
        f"{OVERLAY}:1:1: unknown key 'lable'; did you mean 'label'?",
        f"{OVERLAY}:3:10: unknown key 'max_lenght'; did you mean 'max_length'?",
    ]


def test_problems_of_packs_and_overlays_are_reported_in_one_run(instance: Path) -> None:
    write(
        {
            "packs/contacts/entities/contact.yaml": (
                "fields:\n  full_name: {type: string, max_length: 0}\n"
            ),
            "packs/sales/entities/deal.yaml": "fields:\n  subject: {type: strng}\n",
            OVERLAY: "fields:\n  name: {max_length: 300}\n",
            "custom/sales/deal.yaml": "fields:\n  amount: {type: decimal, scale: 40}\n",
        }
    )
    reported = [line.split(": ", 1)[0] for line in problems()]
    assert reported == [
        f"{OVERLAY}:2:22",
        "custom/sales/deal.yaml:2:34",
        "packs/contacts/entities/contact.yaml:2:41",
        "packs/sales/entities/deal.yaml:2:19",
    ]


def test_an_overlay_of_a_broken_pack_entity_is_still_checked(instance: Path) -> None:
    write(
        {
            "packs/contacts/entities/contact.yaml": "fields:\n  full_name: {type: strng}\n",
            "custom/contacts/contact.yaml": "fields:\n  full_name: {label: Name}\n  x: {tpye: y}\n",
        }
    )
    reported = problems()
    assert reported == [
        "custom/contacts/contact.yaml:3:7: unknown key 'tpye'; did you mean 'type'?",
        "packs/contacts/entities/contact.yaml:2:21: unknown field type 'strng'; "
        "did you mean 'string'?",
    ]


# --- pack upgrades ---------------------------------------------------------------------------


def test_overlay_still_applies_after_the_pack_adds_the_same_field(instance: Path) -> None:
    write(
        {
            OVERLAY: """\
            fields:
              loyalty_tier: {type: enum, values: [bronze, silver, gold], default: bronze,
                             label: Tier}
              name: {max_length: 80}
            indexes: [[loyalty_tier]]
            """
        }
    )
    before = load().entity("contacts.account")
    assert before.field("loyalty_tier").origin == OVERLAY
    assert list(before.fields)[-1] == "loyalty_tier"

    # Version 2 of the pack declares loyalty_tier itself (with one more value), a new field
    # and the same index; the overlay is not touched.
    upgraded = ACCOUNT.replace(
        "  name: {type: string",
        "  loyalty_tier: {type: enum, values: [bronze, silver, gold, platinum]}\n"
        "  website: {type: url}\n"
        "  name: {type: string",
    ).replace("indexes: [[status]]", "indexes: [[status], [loyalty_tier]]")
    write({"packs/contacts/entities/account.yaml": upgraded})
    after = load().entity("contacts.account")

    assert list(after.fields) == ["loyalty_tier", "website", *ACCOUNT_FIELD_NAMES]
    tier = after.field("loyalty_tier")
    assert tier.origin == "packs/contacts/entities/account.yaml"
    assert (tier.values, tier.default, tier.label) == (
        ("bronze", "silver", "gold"),
        "bronze",
        "Tier",
    )
    assert after.field("website").type is FieldType.URL
    assert after.field("name").max_length == 80
    assert after.indexes == (("status",), ("loyalty_tier",))
    assert after.customization == OVERLAY


def test_overlay_field_the_pack_later_declares_with_another_type(instance: Path) -> None:
    write({OVERLAY: "fields:\n  loyalty_tier: {type: enum, values: [bronze, gold]}\n"})
    load()
    write(
        {
            "packs/contacts/entities/account.yaml": ACCOUNT.replace(
                "fields:\n", "fields:\n  loyalty_tier: {type: string}\n"
            )
        }
    )
    assert problems() == [
        f"{OVERLAY}:2:24: field 'loyalty_tier' has type string in pack 'contacts'; "
        "a customization cannot change its type"
    ]


def test_overlay_entry_of_a_field_the_pack_renamed(instance: Path) -> None:
    write({OVERLAY: "fields:\n  region: {label: Area}\n"})
    assert load().entity("contacts.account").field("region").label == "Area"
    write(
        {
            "packs/contacts/entities/account.yaml": ACCOUNT.replace(
                "  region: {type: string,", "  territory: {type: string, renamed_from: region,"
            )
        }
    )
    assert problems() == [
        f"{OVERLAY}:2:3: pack contacts renamed its field 'region' to 'territory'; "
        "rename this entry ('territory' to change that field)"
    ]


# --- renamed_from ----------------------------------------------------------------------------


def test_renamed_from_is_kept_on_the_field(instance: Path) -> None:
    write(
        {
            "packs/contacts/entities/contact.yaml": (
                "fields:\n  display_name: {type: string, renamed_from: full_name}\n"
                "  born: {type: date, renamed_from: birthday}\n"
            ),
            "custom/contacts/contact.yaml": (
                "fields:\n  nickname: {type: string, renamed_from: alias}\n"
            ),
        }
    )
    contact = load().entity("contacts.contact")
    assert contact.field("display_name").renamed_from == "full_name"
    assert contact.field("born").renamed_from == "birthday"
    assert contact.field("nickname").renamed_from == "alias"
    assert load().entity("contacts.account").field("name").renamed_from is None


def test_renamed_from_checks_in_a_pack(instance: Path) -> None:
    write(
        {
            "packs/contacts/entities/contact.yaml": """\
            fields:
              full_name: {type: string, renamed_from: email}
              email: {type: email}
              phone: {type: phone, renamed_from: Mobile}
              fax: {type: phone, renamed_from: id}
              home: {type: phone, renamed_from: landline}
              work: {type: phone, renamed_from: landline}
              self: {type: string, renamed_from: self}
              lines: {type: children, entity: contact_line, renamed_from: rows}
              number: {type: autonumber, format: "C-{###}", renamed_from: code}
            """,
            "packs/contacts/entities/contact_line.yaml": "fields:\n  note: {type: string}\n",
        }
    )
    file = "packs/contacts/entities/contact.yaml"
    assert problems(("contacts",)) == [
        f"{file}:2:43: renamed_from 'email' names a field that still exists",
        f"{file}:4:38: renamed_from 'Mobile' must be a snake_case field name (a-z, 0-9, single _)",
        f"{file}:5:36: renamed_from 'id' is a system or reserved name, which no field can have had",
        f"{file}:7:37: renamed_from 'landline' is already claimed by field 'home'",
        f"{file}:8:38: renamed_from 'self' names a field that still exists",
        f"{file}:9:49: key 'renamed_from' does not apply to a field of type children",
    ]


def test_renamed_from_checks_in_an_overlay(instance: Path) -> None:
    write(
        {
            "packs/contacts/entities/contact.yaml": (
                "fields:\n  full_name: {type: string, renamed_from: name}\n"
            ),
            "custom/contacts/contact.yaml": """\
            fields:
              alias: {type: string, renamed_from: full_name}
              other: {type: string, renamed_from: name}
              later: {type: string, renamed_from: nickname}
              nickname: {type: string}
            """,
        }
    )
    file = "custom/contacts/contact.yaml"
    assert problems(("contacts",)) == [
        f"{file}:2:39: renamed_from 'full_name' names a field that still exists",
        f"{file}:3:39: renamed_from 'name' is already claimed by field 'full_name'",
        f"{file}:4:39: renamed_from 'nickname' names a field that still exists",
    ]


# --- the schema and the rules stay in step with the definition language --------------------


def test_overlay_schema_is_published_and_every_key_is_documented() -> None:
    schemas = all_schemas()
    overlay = schemas["overlay"]
    assert set(overlay["properties"]) == {
        "label",
        "label_plural",
        "description",
        "title",
        "fields",
        "indexes",
        "unique",
        "rules",
        "rollups",
        "form",
    }
    undocumented = [k for k, v in overlay["properties"].items() if "description" not in v]
    field_props = overlay["$defs"]["field"]["properties"]
    undocumented += [k for k, v in field_props.items() if "description" not in v]
    assert undocumented == []


def test_overlay_field_keys_match_the_entity_field_keys() -> None:
    def without_descriptions(schema: dict[str, object]) -> dict[str, object]:
        return {k: v for k, v in schema.items() if k != "description"}

    entity_props = all_schemas()["entity"]["$defs"]["field"]["properties"]
    overlay_props = all_schemas()["overlay"]["$defs"]["field"]["properties"]
    assert {k: without_descriptions(v) for k, v in overlay_props.items()} == {
        k: without_descriptions(v) for k, v in entity_props.items()
    }
    assert set(entity_props) == set().union(*TYPE_KEYS.values())


def test_overlay_schema_takes_its_definitions_from_the_other_schemas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """overlay.schema.json copies no definition: a change to entity.schema.json's field
    (here: at most 10 characters) is what overlays are validated against, untouched."""
    raw = json.loads((_schemas.SCHEMA_DIR / "overlay.schema.json").read_text("utf-8"))
    assert all(set(d) == {"$ref"} for k, d in raw["$defs"].items() if k != "field")
    assert set(raw["$defs"]["field"]) == {"$comment", "properties"}
    field_props = all_schemas()["entity"]["$defs"]["field"]["properties"]
    assert set(raw["$defs"]["field"]["properties"]) == set(field_props)  # none stale

    overlay = {"fields": {"code": {"type": "string", "max_length": 20}}}
    assert _schemas.is_valid("overlay", overlay)
    changed = tmp_path / "schemas"
    shutil.copytree(_schemas.SCHEMA_DIR, changed)
    entity = json.loads((changed / "entity.schema.json").read_text("utf-8"))
    entity["$defs"]["field"]["properties"]["max_length"]["maximum"] = 10
    (changed / "entity.schema.json").write_text(json.dumps(entity), "utf-8")
    monkeypatch.setattr(_schemas, "SCHEMA_DIR", changed)
    _schemas._forget_compiled()
    try:
        assert not _schemas.is_valid("overlay", overlay)
        (error,) = _schemas.validator("overlay").iter_errors(overlay)
        assert list(error.absolute_path) == ["fields", "code", "max_length"]
        assert "20 is greater than the maximum of 10" in error.message
        overlay_field = _schemas.schema_document("overlay")["$defs"]["field"]
        assert overlay_field["properties"]["max_length"]["maximum"] == 10
        assert "description" in overlay_field["properties"]["max_length"]
    finally:
        monkeypatch.undo()
        _schemas._forget_compiled()
    assert _schemas.is_valid("overlay", overlay)


def test_every_field_key_has_a_customization_rule() -> None:
    assert set(_RULES) == set().union(*TYPE_KEYS.values()) - {"type"}


def test_overlay_rules_on_submit_or_cancel_need_a_document(instance: Path) -> None:
    """The same check as for a pack's rules file: ``on: submit`` on an entity that is not a
    document would never run, so it is refused at the overlay's key."""
    write(
        {
            OVERLAY: """\
            rules:
              - name: fine
                assert: "employees is none or employees >= 0"
              - name: never_runs
                on: [create, submit]
                assert: "employees > 0"
            """
        }
    )
    (problem,) = problems()
    assert problem.startswith(f"{OVERLAY}:5:")
    assert "'on: submit' applies only to documents, and contacts.account is not one" in problem


def test_overlay_rules_on_submit_of_a_document_load(instance: Path) -> None:
    write(
        {
            "packs/contacts/entities/contact.yaml": (
                "document: true\nfields:\n  full_name: {type: string}\n"
            ),
            "custom/contacts/contact.yaml": """\
            rules:
              - name: named_on_submit
                on: [submit]
                assert: "full_name"
            """,
        }
    )
    rules = load().entities["contacts.contact"].rules
    assert [rule.name for rule in rules] == ["named_on_submit"]

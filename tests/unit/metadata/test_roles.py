"""Roles (SPEC §3.5) as definitions: a pack's ``roles.yaml`` and the instance's own (in
the customizations folder) become ``RoleDef``s with typed grants; a ``where`` becomes a
record filter; every mistake is reported at its file:line:col."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from metadata import (
    AllOf,
    AnyOf,
    CompareOp,
    DefinitionError,
    FieldComparison,
    NoneOf,
    Permission,
    ProjectDef,
    UserValue,
    load_project,
)

PACK = {
    "packs/sales/module.yaml": 'name: sales\nversion: "1.0.0"\n',
    "packs/sales/entities/deal.yaml": """\
        fields:
          name: {type: string, required: true}
          amount: {type: decimal, scale: 2}
          margin: {type: decimal, scale: 2}
          status: {type: enum, values: [open, won, lost], default: open}
          private: {type: boolean}
          lines: {type: children, entity: line}
        """,
    "packs/sales/entities/line.yaml": "fields:\n  text: {type: string}\n",
}
ROLES = "packs/sales/roles.yaml"


@pytest.fixture(autouse=True)
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(PACK)


def write(files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = Path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def load() -> ProjectDef:
    return load_project(["sales"], [Path("packs")], customizations=Path("custom"))


def problems() -> list[str]:
    with pytest.raises(DefinitionError) as raised:
        load()
    return [str(p) for p in raised.value.problems]


def test_roles_load_with_grants_inheritance_and_record_filters() -> None:
    write(
        {
            ROLES: """\
            roles:
              sales_rep:
                label: Sales representative
                grants:
                  - entity: deal
                    actions: [read, create, update]
                    where: "created_by == user.id and (status != 'lost' or not private)"
                    hidden_fields: [margin]
                    readonly_fields: [amount]
              manager:
                inherits: [sales_rep]
                grants:
                  - {entity: sales.deal, actions: [delete], where: "user.username == name"}
              auditor: {}
            """
        }
    )
    project = load()
    rep = project.roles["sales_rep"]
    assert rep.label == "Sales representative"
    (grant,) = rep.grants
    assert grant.entity == "sales.deal"
    assert grant.permissions == {Permission.READ, Permission.CREATE, Permission.UPDATE}
    assert grant.hidden_fields == {"margin"}
    assert grant.readonly_fields == {"amount"}
    assert grant.where_filter == AllOf(
        (
            FieldComparison("created_by", CompareOp.EQ, UserValue("id")),
            AnyOf(
                (
                    FieldComparison("status", CompareOp.NE, "lost"),
                    NoneOf(FieldComparison("private", CompareOp.EQ, True)),
                )
            ),
        )
    )
    manager = project.roles["manager"]
    assert manager.inherits == ("sales_rep",)
    assert manager.grants[0].where_filter == FieldComparison(
        "name", CompareOp.EQ, UserValue("username")
    )
    assert project.role_closure(["manager"]) == {"manager", "sales_rep"}
    assert project.roles["auditor"].label == "Auditor"


def test_the_instance_roles_file_adds_roles_and_grants() -> None:
    write(
        {
            ROLES: "roles:\n  clerk:\n    grants:\n      - {entity: deal, actions: [read]}\n",
            "custom/roles.yaml": """\
            roles:
              clerk:
                grants:
                  - {entity: sales.deal, actions: [update], where: "amount < 100"}
              temp: {inherits: [clerk]}
            """,
        }
    )
    project = load()
    clerk = project.roles["clerk"]
    assert [sorted(g.permissions) for g in clerk.grants] == [["read"], ["update"]]
    assert clerk.origins == ("packs/sales/roles.yaml", "custom/roles.yaml")
    assert project.roles["temp"].inherits == ("clerk",)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("amount >", "expression does not parse"),
        ("name | length > 3", "each comparison needs a field of the record on one side"),
        ("1 < amount < 3", "write chained comparisons"),
        ("amount > user.roles", "compare with a constant"),
        ("nope == 1", "'nope' is not a field of sales.deal"),
        ("lines == 1", "'lines' (children) cannot be used in a where"),
        ("status in user.id", "'in' and 'not in' take a list of constants"),
        ("amount is defined", "only 'is none' tests"),
        ("name ~ 'x'", "a where compares fields with constants"),
    ],
)
def test_a_where_outside_the_filter_language_is_reported(where: str, message: str) -> None:
    grant = f'{{entity: deal, actions: [read], where: "{where}"}}'
    write({ROLES: f"roles:\n  r:\n    grants:\n      - {grant}\n"})
    (problem,) = problems()
    assert problem.startswith(f"{ROLES}:4:")
    assert message in problem


def test_mistakes_in_roles_are_reported_at_their_position() -> None:
    write(
        {
            ROLES: """\
            roles:
              a:
                inherits: [b, ghost]
              b:
                inherits: [a]
                grants:
                  - {entity: deals, actions: [read]}
                  - {entity: line, actions: [read]}
                  - {entity: deal, actions: [read], hidden_fields: [nope, id]}
                  - {entity: deal, actions: [update], readonly_fields: [margin],
                     hidden_fields: [margin]}
              admin: {}
            """,
            "custom/roles.yaml": "roles:\n  c:\n    grants:\n      - {entity: deal, actions: [read]}\n",  # noqa: E501
        }
    )
    assert problems() == [
        "custom/roles.yaml:4:18: unknown entity 'deal' (write pack.entity here)",
        f"{ROLES}:3:19: unknown role 'ghost'",
        f"{ROLES}:5:16: roles inherit in a cycle: a -> b -> a",
        f"{ROLES}:7:18: unknown entity 'deals'; did you mean 'sales.deal'?",
        f"{ROLES}:8:18: unknown entity 'line'; did you mean 'sales.deal'?",
        f"{ROLES}:9:57: 'nope' is not a field of sales.deal",
        f"{ROLES}:9:63: 'id' is a system field; grants cannot hide or protect it",
        f"{ROLES}:10:61: 'margin' is hidden already (hidden fields are never writable)",
        f"{ROLES}:12:3: 'admin' is built in (it may do everything)",
    ]


def test_a_roles_file_is_checked_against_its_schema() -> None:
    write({ROLES: "roles:\n  r:\n    grants:\n      - {entity: deal, actions: [fly]}\n"})
    (problem,) = problems()
    assert problem.startswith(f"{ROLES}:4:")
    assert "'fly' is not one of" in problem


def test_submit_and_cancel_are_granted_only_on_documents() -> None:
    write({ROLES: "roles:\n  r:\n    grants:\n      - {entity: deal, actions: [read, submit]}\n"})
    (problem,) = problems()
    assert problem.startswith(f"{ROLES}:4:")
    assert "'submit' applies only to documents, and sales.deal is not one" in problem


def test_a_documents_state_cannot_be_hidden_from_a_role() -> None:
    """A submit or an edit of a document answers with its state (409 ``submitted``) and the
    web form shows it as a badge, so hiding ``docstatus`` could never hold: refused at load.
    ``amended_from`` is an ordinary reference and may be hidden."""
    write(
        {
            "packs/sales/entities/quote.yaml": "document: true\nfields:\n  name: {type: string}\n",
            ROLES: """\
            roles:
              r:
                grants:
                  - {entity: quote, actions: [read], hidden_fields: [amended_from, docstatus]}
            """,
        }
    )
    (problem,) = problems()
    assert problem.startswith(f"{ROLES}:4:")
    assert "'docstatus' is a document's lifecycle state; grants cannot hide" in problem


def test_validate_advises_an_index_for_grants_on_the_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from metadata import access_index_advice

    monkeypatch.chdir(tmp_path)
    files = {
        "packs/crm/module.yaml": 'name: crm\nversion: "1.0.0"\n',
        "packs/crm/entities/deal.yaml": (
            "fields:\n  owner: {type: string}\n  amount: {type: decimal}\n"
        ),
        "packs/crm/entities/lead.yaml": (
            "fields:\n  owner: {type: string}\n  amount: {type: decimal}\n"
            "indexes: [[owner, amount]]\n"
        ),
        "packs/crm/roles.yaml": (
            "roles:\n"
            "  rep:\n"
            "    grants:\n"
            "      - entity: deal\n"
            "        actions: [read]\n"
            '        where: "owner == user.username and amount > 0"\n'
            '      - {entity: deal, actions: [delete], where: "created_by == user.id"}\n'
            '      - {entity: lead, actions: [read], where: "owner == user.username"}\n'
            '      - {entity: lead, actions: [read], where: "amount > 0 or owner == user"}\n'
        ),
    }
    for relative, text in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    project = load_project(["crm"], [tmp_path / "packs"])
    (advice,) = access_index_advice(project)
    assert "role 'rep' reads crm.deal where owner == user.username and amount > 0" in advice
    assert "no index starts with 'owner'" in advice
    assert advice.endswith("add to crm.deal indexes: [[owner, <the field its lists sort by>]]")

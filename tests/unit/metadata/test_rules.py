"""Validation rules (SPEC §3.3) as definitions: ``rules/<entity>.yaml`` in a pack and
``rules:`` in a customization become ``RuleDef``s; every mistake is reported at its
file:line:col."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from metadata import DefinitionError, RuleEvent, load_project

PACK = {
    "packs/sales/module.yaml": 'name: sales\nversion: "1.0.0"\n',
    "packs/sales/entities/deal.yaml": """\
        fields:
          amount: {type: decimal, min: 0}
          stage: {type: enum, values: [open, won, lost], default: open}
          close_date: {type: date}
        """,
}
RULES = "packs/sales/rules/deal.yaml"
OVERLAY = "custom/sales/deal.yaml"


@pytest.fixture(autouse=True)
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(PACK)


def write(files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = Path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def problems() -> list[str]:
    with pytest.raises(DefinitionError) as raised:
        load_project(["sales"], [Path("packs")], customizations=Path("custom"))
    return [str(p) for p in raised.value.problems]


def test_pack_and_customization_rules_load_in_order() -> None:
    write(
        {
            RULES: """\
                # deal rules
                - name: positive_when_won
                  when: "stage == 'won'"
                  assert: "amount is not none and amount > 0"
                  field: amount
                  message: A won deal has an amount
                - name: keep_won
                  on: delete
                  assert: "stage != 'won'"
                """,
            OVERLAY: """\
                rules:
                  - name: dated_when_closed
                    on: [create, update]
                    assert: "stage == 'open' or close_date is not none or changed('stage')"
                """,
        }
    )
    deal = load_project(["sales"], [Path("packs")], customizations=Path("custom")).entity(
        "sales.deal"
    )
    assert [r.name for r in deal.rules] == ["positive_when_won", "keep_won", "dated_when_closed"]
    first, keep, ours = deal.rules
    assert (first.field, first.message, first.when) == (
        "amount",
        "A won deal has an amount",
        "stage == 'won'",
    )
    assert first.events == {RuleEvent.CREATE, RuleEvent.UPDATE}
    assert keep.events == {RuleEvent.DELETE}
    assert keep.message == "rule 'keep_won' is not satisfied"
    assert first.origin.endswith(RULES)
    assert ours.origin.endswith(OVERLAY)


def test_each_mistake_is_reported_at_its_key() -> None:
    write(
        {
            RULES: """\
                - name: typo
                  assert: "amout > 0"
                - name: bad_syntax
                  assert: "amount >"
                - name: wrong_field
                  assert: "true"
                  field: amuont
                - name: with_schedule
                  assert: "true"
                  schedule: "*/15 * * * *"
                - name: no_assert
                - name: typo
                  assert: "true"
                """,
            "packs/sales/rules/invoice.yaml": "- {name: x, assert: 'true'}\n",
        }
    )
    found = problems()
    assert any(
        p.endswith(f"{RULES}:2:11: unknown name 'amout' in expression; did you mean 'amount'?")
        for p in found
    ), found
    assert any(f"{RULES}:4:11: expression does not parse" in p for p in found), found
    assert any(
        p.endswith(f"{RULES}:7:10: field 'amuont' is not a field; did you mean 'amount'?")
        for p in found
    ), found
    assert any(
        p.endswith(
            f"{RULES}:9:3: a scheduled rule runs on its schedule, not on writes: "
            "it cannot have 'assert'"
        )
        for p in found
    ), found
    assert any(
        p.endswith(f"{RULES}:8:3: scheduled rule 'with_schedule' needs 'actions'") for p in found
    ), found
    assert any(
        p.endswith(
            f"{RULES}:11:3: rule 'no_assert' needs an 'assert' expression, 'actions' or 'assign'"
        )
        for p in found
    ), found
    assert any(f"{RULES}:12:9: rule 'typo' is already declared in" in p for p in found), found
    assert any(
        p.endswith(
            "packs/sales/rules/invoice.yaml:1:1: "
            "rules for 'invoice', which is not an entity of this pack"
        )
        for p in found
    ), found
    assert len(found) == 8, found


def test_a_customization_cannot_redeclare_a_pack_rule() -> None:
    write(
        {
            RULES: "- {name: keep_won, on: delete, assert: \"stage != 'won'\"}\n",
            OVERLAY: "rules:\n  - {name: keep_won, assert: 'true'}\n",
        }
    )
    (problem,) = problems()
    assert problem == (
        f"{OVERLAY}:2:12: rule 'keep_won' is already declared in packs/sales/rules/deal.yaml"
    )


def test_a_rules_file_must_be_a_list() -> None:
    write({RULES: "name: keep_won\nassert: 'true'\n"})
    (problem,) = problems()
    assert problem.endswith(f"{RULES}:1:1: expected a list at the top of this rules file")


def test_computed_expressions_read_known_names_without_circles() -> None:
    write(
        {
            "packs/sales/entities/deal.yaml": """\
                fields:
                  amount: {type: decimal}
                  tax: {type: decimal, computed: "amuont * 0.2"}
                  a: {type: integer, computed: "b + 1"}
                  b: {type: integer, computed: "a + 1"}
                  ok: {type: integer, computed: "a + amount"}
                """
        }
    )
    found = problems()
    deal = "packs/sales/entities/deal.yaml"
    assert found == [
        f"{deal}:3:34: unknown name 'amuont' in expression; did you mean 'amount'?",
        f"{deal}:4:32: computed fields read each other in a circle: a -> b -> a",
    ]


def test_actions_are_checked_against_their_target() -> None:
    write(
        {
            "packs/sales/entities/order.yaml": """\
                fields:
                  deal: {type: reference, to: deal, required: true}
                  number: {type: autonumber, format: "O-{####}"}
                """,
            RULES: """\
                - name: won_creates_order
                  on: update
                  actions:
                    - create: {entity: order, values: {deal: "{{ id }}", number: "x"}}
                    - create: {entity: ordr, values: {}}
                    - create: {entity: order, values: {note: "{{ amout }}"}}
                    - update: {values: {stge: won}}
                    - email: {to: "a@example.invalid"}
                """,
        }
    )
    assert problems() == [
        f"{RULES}:4:58: field 'number' of sales.order cannot be set by an action "
        "(read-only, computed, autonumber or line items)",
        f"{RULES}:5:24: unknown entity 'sales.ordr'; did you mean 'sales.order'?",
        f"{RULES}:6:46: unknown name 'amout' in template",
        f"{RULES}:7:25: 'stge' is not a field of sales.deal; did you mean 'stage'?",
        f"{RULES}:8:14: an email needs a 'template' or a 'body'",
    ]


def test_email_and_webhook_actions_are_checked_at_load_time() -> None:
    write(
        {
            "packs/sales/templates/won.txt": "Subject: Won {{ stage }}\n{{ amout }}\n",
            "packs/sales/templates/ok.txt": "Subject: Won {{ stage }}\n{{ amount }}\n",
            RULES: """\
                - name: tell_people
                  on: update
                  actions:
                    - email: {to: "{{ owner }}", template: won.txt}
                    - email: {to: "x@example.invalid", template: missing.txt}
                    - email: {to: "x@example.invalid", template: ../../secrets.txt}
                    - webhook: {url: "ftp://example.invalid/hook"}
                    - webhook: {url: "https://example.invalid/{{ id }}", payload: {a: "{{ nme }}"}}
                    - email: {to: "x@example.invalid", template: ok.txt}
                """,
        }
    )
    assert problems() == [
        f"{RULES}:4:19: unknown name 'owner' in template",
        f"{RULES}:4:44: won.txt: unknown name 'amout' in template",
        f"{RULES}:5:50: template 'missing.txt' not found in packs/sales/templates",
        f"{RULES}:6:50: template '../../secrets.txt' must be a file in the pack's "
        "templates/ folder",
        f"{RULES}:7:22: 'ftp://example.invalid/hook' is not an http:// or https:// URL",
        f"{RULES}:8:71: unknown name 'nme' in template",
    ]


def test_scheduled_rules_are_checked_at_load_time() -> None:
    write(
        {
            RULES: """\
                - name: nightly
                  schedule: "0 2 * * *"
                  where: "stage == 'open' and close_date < today()"
                  actions:
                    - update: {values: {stage: lost}}
                - name: bad_cron
                  schedule: "61 * * * *"
                  actions: [{update: {values: {stage: lost}}}]
                - name: bad_where
                  schedule: "* * * * *"
                  where: "stge == 'open'"
                  on: update
                  actions: [{update: {values: {stage: lost}}}]
                - name: where_alone
                  where: "true"
                  assert: "true"
                """,
        }
    )
    assert problems() == [
        f"{RULES}:7:13: schedule '61 * * * *': minute: '61' is not valid (0-59; '*', a-b, "
        "*/n, a-b/n, and lists of those)",
        f"{RULES}:11:10: unknown name 'stge' in expression; did you mean 'stage'?",
        f"{RULES}:12:3: a scheduled rule runs on its schedule, not on writes: it cannot have 'on'",
        f"{RULES}:15:3: 'where' selects the records of a scheduled rule; add a 'schedule'",
    ]


def test_a_scheduled_rule_loads_with_its_schedule_and_filter() -> None:
    write(
        {
            RULES: """\
                - name: nightly
                  schedule: "0 2 * * *"
                  where: "stage == 'open'"
                  actions:
                    - update: {values: {stage: lost}}
                """,
        }
    )
    project = load_project(["sales"], [Path("packs")], customizations=Path("custom"))
    (rule,) = project.entity("sales.deal").rules
    assert (rule.schedule, rule.where, rule.assertion) == ("0 2 * * *", "stage == 'open'", None)


def test_default_expressions_are_checked_at_load_time() -> None:
    write(
        {
            "packs/sales/entities/deal.yaml": """\
                fields:
                  amount: {type: decimal}
                  opened: {type: date, default: "{{ today() }}"}
                  note: {type: string, default: "{{ amuont }} due"}
                  bad: {type: string, default: "{{ amount + }}"}
                """
        }
    )
    deal = "packs/sales/entities/deal.yaml"
    assert problems() == [
        f"{deal}:4:33: unknown name 'amuont' in template",
        f"{deal}:5:32: template does not parse: unexpected 'end of print statement'",
    ]


def test_run_as_is_checked_at_load_time() -> None:
    write(
        {
            "packs/sales/roles.yaml": """\
                roles:
                  clerk:
                    grants: [{entity: deal, actions: [update]}]
                """,
            RULES: """\
                - name: as_clerk
                  when: "stage == 'won'"
                  run_as: clerk
                  actions: [{update: {values: {amount: 1}}}]
                - name: as_typo
                  run_as: clerc
                  actions: [{update: {values: {amount: 1}}}]
                - name: nightly_as_user
                  schedule: "0 2 * * *"
                  run_as: user
                  actions: [{update: {values: {stage: lost}}}]
                - name: check_only
                  assert: "amount >= 0"
                  run_as: user
                - name: later
                  run_as: user
                  actions: [{update: {values: {amount: 1}}, async: true}]
                """,
        }
    )
    assert problems() == [
        f"{RULES}:6:11: run_as: 'clerc' is not a role of any roles.yaml; did you mean 'clerk'?"
        " (use system, user or a declared role)",
        f"{RULES}:10:3: a scheduled rule has no writing user: use run_as: system or a role",
        f"{RULES}:14:3: 'run_as' sets the rights of a rule's actions; this rule has none",
        f"{RULES}:16:3: an async action is applied after the commit with the system's rights;"
        " 'run_as' cannot limit it: drop 'async' or 'run_as'",
    ]


def test_run_as_defaults_to_system() -> None:
    write(
        {
            RULES: """\
                - name: plain
                  actions: [{update: {values: {amount: 1}}}]
                - name: mine
                  run_as: user
                  actions: [{update: {values: {amount: 2}}}]
                - name: by_admin
                  run_as: admin
                  actions: [{update: {values: {amount: 3}}}]
                """,
        }
    )
    project = load_project(["sales"], [Path("packs")], customizations=Path("custom"))
    assert [r.run_as for r in project.entity("sales.deal").rules] == ["system", "user", "admin"]


def test_line_items_take_assert_rules_only() -> None:
    """A line entity's rules run with its parent's writes: an action, a schedule or a delete
    rule there would never run, so each is a load error rather than silently ignored."""
    write(
        {
            "packs/sales/entities/deal.yaml": """\
                fields:
                  amount: {type: decimal, min: 0}
                  lines: {type: children, entity: deal_line}
                """,
            "packs/sales/entities/deal_line.yaml": """\
                fields:
                  qty: {type: integer}
                """,
            "packs/sales/rules/deal_line.yaml": """\
                - name: capped
                  when: "qty is not none"
                  assert: "qty <= 1000"
                  field: qty
                - name: notify
                  actions: [{update: {values: {qty: 1}}}]
                - name: nightly
                  schedule: "0 2 * * *"
                  actions: [{update: {values: {qty: 1}}}]
                - name: kept
                  on: [update, delete]
                  assert: "false"
                """,
            "custom/sales/deal_line.yaml": """\
                rules:
                  - name: ours
                    assert: "qty != 13"
                  - name: ping
                    actions: [{webhook: {url: "https://example.com/hook"}}]
                """,
        }
    )
    lines = "sales.deal_line is the line items of sales.deal"
    unsupported = "are not supported on line items, only 'assert' rules run with its writes; "
    unsupported += "put this rule on sales.deal (its lines are in scope there)"
    delete = (
        f"{lines}: 'on: delete' is not supported on line items (a line is removed by a write "
        "of sales.deal); use a rule of sales.deal, whose 'old' has the lines as they were"
    )
    line_rules = "packs/sales/rules/deal_line.yaml"
    assert problems() == [
        f"custom/sales/deal_line.yaml:5:5: {lines}: actions {unsupported}",
        f"{line_rules}:6:3: {lines}: actions {unsupported}",
        f"{line_rules}:8:3: {lines}: scheduled rules {unsupported}",
        f"{line_rules}:11:3: {delete}",
    ]


def test_mapping_actions_are_checked_at_load_time() -> None:
    write(
        {
            "packs/sales/entities/deal.yaml": """\
                fields:
                  amount: {type: decimal, min: 0}
                  stage: {type: enum, values: [open, won, lost], default: open}
                  lines: {type: children, entity: deal_line}
                """,
            "packs/sales/entities/deal_line.yaml": """\
                fields:
                  item: {type: string}
                  qty: {type: integer}
                """,
            "packs/sales/entities/order.yaml": """\
                fields:
                  deal: {type: reference, to: deal}
                  items: {type: children, entity: order_line}
                """,
            "packs/sales/entities/order_line.yaml": """\
                fields:
                  item: {type: string}
                  qty: {type: integer}
                """,
            RULES: """\
                - name: mapped
                  on: update
                  actions:
                    - create:
                        entity: order
                        values: {deal: "{{ id }}"}
                        lines: {from: lnes, to: lines, map: {itm: "{{ line.item }}"}}
                    - create:
                        entity: order
                        values: {deal: "{{ id }}"}
                        lines: {from: lines, to: items, map: {item: "{{ lin.item }}"}}
                    - update: {entity: order, values: {deal: "{{ id }}"}}
                    - for_each: amount
                      update: {entity: order, id: "{{ line.qty }}", values: {deal: "{{ id }}"}}
                    - for_each: lines
                      update: {entity: order, id: "{{ line.qty }}", values: {deal: "{{ id }}"}}
                    - update: {values: {stage: "{{ line.item }}"}}
                """,
        }
    )
    assert problems() == [
        f"{RULES}:7:23: 'lnes' is not a field of sales.deal; did you mean 'lines'? "
        "(its children fields: lines)",
        f"{RULES}:7:33: 'lines' is not a field of sales.order; did you mean 'items'? "
        "(its children fields: items)",
        f"{RULES}:11:53: unknown name 'lin' in template",
        f"{RULES}:12:15: an update of another entity needs 'id' (a template naming the "
        "record, e.g. id: \"{{ order }}\") or 'where' (field values selecting the records)",
        f"{RULES}:13:17: 'amount' is not a children field of sales.deal (its children "
        "fields: lines)",
        f"{RULES}:17:32: unknown name 'line' in template",
    ]


def test_a_rule_writes_only_entities_of_its_packs_dependencies() -> None:
    other = {
        "packs/orders/module.yaml": 'name: orders\nversion: "1.0.0"\n',
        "packs/orders/entities/order.yaml": "fields:\n  note: {type: string}\n",
        RULES: """\
            - name: won_creates_order
              on: update
              actions:
                - create: {entity: orders.order, values: {note: "{{ stage }}"}}
            """,
    }
    write(other)
    with pytest.raises(DefinitionError) as raised:
        load_project(["orders", "sales"], [Path("packs")])
    assert [str(p) for p in raised.value.problems] == [
        f"{RULES}:4:24: entity 'orders.order' belongs to pack 'orders', which pack 'sales' "
        "does not depend on: add 'orders' to depends in module.yaml",
    ]
    write({"packs/sales/module.yaml": 'name: sales\nversion: "1.0.0"\ndepends: [orders]\n'})
    project = load_project(["orders", "sales"], [Path("packs")])
    (rule,) = project.entities["sales.deal"].rules
    assert rule.actions[0].describe() == {
        "create": {"entity": "orders.order", "values": {"note": "{{ stage }}"}}
    }


def test_an_update_of_other_records_is_checked_at_load_time() -> None:
    write(
        {
            "packs/sales/entities/order.yaml": """\
                fields:
                  deal: {type: reference, to: deal}
                  status: {type: string}
                  items: {type: children, entity: order_line}
                """,
            "packs/sales/entities/order_line.yaml": "fields:\n  qty: {type: integer}\n",
            RULES: """\
                - name: updates
                  on: update
                  actions:
                    - update: {entity: order, where: {deal: "{{ id }}", stats: x}, values: {}}
                    - update: {entity: order, where: {items: "{{ id }}"}, values: {}}
                    - update: {entity: order, id: "{{ id }}", where: {deal: 1}, values: {}}
                    - async: true
                      update: {entity: order, id: "{{ id }}", values: {status: x}}
                    - create:
                        entity: order
                        values: {}
                        lines: {from: lines, to: items, map: {qtty: 1}}
                """,
        }
    )
    assert problems() == [
        f"{RULES}:4:57: 'stats' is not a field of sales.order; did you mean 'status'?",
        f"{RULES}:5:39: field 'items' (children) of sales.order cannot select records",
        f"{RULES}:6:47: give 'id' or 'where', not both",
        f"{RULES}:8:15: an action with another record runs in the write's transaction: "
        "drop 'async'",
        f"{RULES}:12:23: 'lines' is not a field of sales.deal (its children fields: none)",
        f"{RULES}:12:47: 'qtty' is not a field of sales.order_line; did you mean 'qty'?",
    ]

"""The sales pack of the delivery tests: a won opportunity creates an order (in the
write's transaction), e-mails its owner and calls a webhook (through the outbox)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

FILES = {
    "module.yaml": "name: sales\nversion: 1.0.0\n",
    "entities/opportunity.yaml": """\
title: name
fields:
  name:        {type: string, required: true}
  owner_email: {type: email}
  amount:      {type: decimal, scale: 2}
  stage:       {type: enum, values: [open, closed_won, closed_lost], default: open}
""",
    "entities/order.yaml": """\
fields:
  opportunity: {type: reference, to: opportunity, required: true}
  amount:      {type: decimal, scale: 2}
""",
    "rules/opportunity.yaml": """\
- name: won_creates_order
  on: update
  when: "changed('stage') and stage == 'closed_won'"
  actions:
    - create: {entity: order, values: {opportunity: "{{ id }}", amount: "{{ amount }}"}}
    - email: {to: "{{ owner_email }}", template: won.txt}
    - webhook: {url: "WEBHOOK_URL"}
- name: big_deals_get_the_vip_desk
  on: create
  when: "amount is not none and amount > 100000"
  actions:
    - update: {values: {owner_email: "vip@acme.test"}}
      async: true
- name: lost_pings_the_hook
  on: update
  when: "changed('stage') and stage == 'closed_lost'"
  actions:
    - webhook:
        url: "WEBHOOK_URL"
        payload: {deal: "{{ name }}", amount: "{{ amount }}", lost: true}
""",
    "rules/order.yaml": """\
- name: order_needs_an_amount
  assert: "amount is not none and amount > 0"
  field: amount
  message: An order needs an amount
""",
    "templates/won.txt": """\
Subject: Won: {{ name }}
Congratulations, {{ name }} was won for {{ amount }} (stage {{ stage }}).
""",
}


def write_sales_pack(root: Path, webhook_url: str) -> Path:
    pack = root / "sales"
    for relative, text in FILES.items():
        path = pack / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("WEBHOOK_URL", webhook_url))
    return root

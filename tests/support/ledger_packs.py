"""A small stock-and-books pack for the ledger and posting tests (tests/integration/api/
test_ledgers.py, test_postings.py, test_postings_concurrency.py): items and warehouses, a
``bin`` balance that never goes below zero, a stock ledger, stock entries and deliveries
against order lines (``delivered_qty`` with an ``over_delivery`` assert), and a balanced
general ledger with journal entries, a round-off row and a period lock."""

from __future__ import annotations

FILES = {
    "module.yaml": "name: stock\nversion: 1.0.0\n",
    "entities/item.yaml": "fields:\n  sku: {type: string, unique: true, required: true}\n",
    "entities/warehouse.yaml": "fields:\n  name: {type: string, unique: true, required: true}\n",
    "entities/bin.yaml": """\
balance:
  key: [item, warehouse]
  limits:
    - {field: actual_qty, min: 0, code: insufficient_stock, message: "not enough stock"}
fields:
  item:         {type: reference, to: item, required: true}
  warehouse:    {type: reference, to: warehouse, required: true}
  actual_qty:   {type: decimal, scale: 3, default: 0}
  reserved_qty: {type: decimal, scale: 3, default: 0}
""",
    "entities/stock_ledger_entry.yaml": """\
ledger: {amounts: [qty_change], date: posting_date}
fields:
  item:         {type: reference, to: item, required: true}
  warehouse:    {type: reference, to: warehouse, required: true}
  posting_date: {type: date}
  qty_change:   {type: decimal, scale: 3, required: true}
  qty_after:    {type: decimal, scale: 3}
""",
    "entities/stock_entry.yaml": """\
document: true
fields:
  purpose:      {type: enum, values: [receipt, issue], required: true}
  posting_date: {type: date}
  lines:        {type: children, entity: stock_entry_line}
""",
    "entities/stock_entry_line.yaml": """\
fields:
  item:      {type: reference, to: item, required: true}
  warehouse: {type: reference, to: warehouse, required: true}
  quantity:  {type: decimal, scale: 3, required: true, min: 0.001}
""",
    "rules/stock_entry.yaml": """\
- name: move_stock
  on: [submit]
  actions:
    - for_each: lines
      post:
        ledger: stock_ledger_entry
        field: quantity
        values:
          item: "{{ line.item }}"
          warehouse: "{{ line.warehouse }}"
          posting_date: "{{ posting_date }}"
          qty_change: "{{ line.quantity if purpose == 'receipt' else -line.quantity }}"
        balance: {entity: bin, add: {actual_qty: qty_change}, after: {qty_after: actual_qty}}
""",
    "entities/sales_order.yaml": """\
document: true
fields:
  customer: {type: string}
  lines:    {type: children, entity: sales_order_line}
""",
    "entities/sales_order_line.yaml": """\
fields:
  item:          {type: reference, to: item, required: true}
  warehouse:     {type: reference, to: warehouse, required: true}
  quantity:      {type: decimal, scale: 3, required: true}
  delivered_qty: {type: decimal, scale: 3, default: 0, read_only: true}
""",
    "rules/sales_order_line.yaml": """\
- name: not_over_delivered
  assert: "(delivered_qty or 0) <= quantity"
  field: delivered_qty
  code: over_delivery
  message: "more would be delivered than was ordered"
""",
    "rules/sales_order.yaml": """\
- name: reserve
  on: [submit]
  actions:
    - for_each: lines
      adjust:
        entity: bin
        key: {item: "{{ line.item }}", warehouse: "{{ line.warehouse }}"}
        add: {reserved_qty: "{{ line.quantity }}"}
        field: quantity
""",
    "entities/delivery.yaml": """\
document: true
fields:
  posting_date: {type: date}
  sales_order:  {type: reference, to: sales_order}
  lines:        {type: children, entity: delivery_line}
""",
    "entities/delivery_line.yaml": """\
fields:
  item:             {type: reference, to: item, required: true}
  warehouse:        {type: reference, to: warehouse, required: true}
  quantity:         {type: decimal, scale: 3, required: true}
  sales_order_line: {type: reference, to: sales_order_line}
""",
    "rules/delivery.yaml": """\
- name: deliver
  on: [submit]
  actions:
    - for_each: lines
      post:
        ledger: stock_ledger_entry
        field: quantity
        values:
          item: "{{ line.item }}"
          warehouse: "{{ line.warehouse }}"
          posting_date: "{{ posting_date }}"
          qty_change: "{{ -line.quantity }}"
        balance: {entity: bin, add: {actual_qty: qty_change}, after: {qty_after: actual_qty}}
    - for_each: lines
      adjust:
        entity: bin
        key: {item: "{{ line.item }}", warehouse: "{{ line.warehouse }}"}
        add: {reserved_qty: "{{ -line.quantity if line.sales_order_line else 0 }}"}
    - for_each: lines
      adjust:
        entity: sales_order_line
        id: "{{ line.sales_order_line or '' }}"
        add: {delivered_qty: "{{ line.quantity }}"}
        field: quantity
""",
    "entities/settings.yaml": "fields:\n  books_closed_until: {type: date}\n",
    "entities/account.yaml": "fields:\n  code: {type: string, unique: true, required: true}\n",
    "entities/gl_entry.yaml": """\
ledger:
  amounts: [debit, credit]
  date: posting_date
  balanced:
    debit: debit
    credit: credit
    tolerance: "0.05"
    round_off: {account: {code: ROUND}, remark: round-off}
  lock: {entity: settings, field: books_closed_until}
fields:
  posting_date: {type: date, required: true}
  account:      {type: reference, to: account, required: true}
  debit:        {type: decimal, scale: 2, default: 0}
  credit:       {type: decimal, scale: 2, default: 0}
  remark:       {type: string}
""",
    "entities/journal_entry.yaml": """\
document: true
fields:
  posting_date: {type: date, required: true}
  lines:        {type: children, entity: journal_entry_line}
""",
    "entities/journal_entry_line.yaml": """\
fields:
  account: {type: reference, to: account, required: true}
  debit:   {type: decimal, scale: 2, default: 0}
  credit:  {type: decimal, scale: 2, default: 0}
""",
    "rules/journal_entry.yaml": """\
- name: post_gl
  on: [submit]
  actions:
    - for_each: lines
      post:
        ledger: gl_entry
        values:
          posting_date: "{{ posting_date }}"
          account: "{{ line.account }}"
          debit: "{{ line.debit }}"
          credit: "{{ line.credit }}"
""",
}
API = "/api/v1/stock"

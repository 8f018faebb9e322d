"""Money fields: a decimal with ``currency:`` is an amount of money, and that key says whose
currency it is (docs/locales.md). Checked once the entity is whole (its customization
applied), at the key that is wrong:

    grand_total: {type: decimal, currency: currency}          # the record's own currency field
    base_total:  {type: decimal, currency: company}           # company: {currency} in tessera.yaml
    fee:         {type: decimal, currency: EUR}               # always euros
    amount:      {type: decimal, currency: parent.currency}   # a line: its document's currency

``parent.<field>`` is written as a line item entity's lookups read their parent
(``parent.posting_date``); it is checked by :func:`check_parent_currencies` once every line
entity knows its parent, the others by :func:`check_currencies` as each entity is built.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from metadata._errors import did_you_mean
from metadata._model import FieldType

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from metadata._errors import ProblemCollector
    from metadata._model import EntityDef, FieldDef
    from metadata._yaml import SourceDocument

COMPANY_CURRENCY = "company"
CURRENCY_CODE = re.compile(r"[A-Z]{3}")
"""An ISO 4217 code as written in a definition (``EUR``)."""
PARENT_PREFIX = "parent."
"""``currency: parent.currency``: a line's amount is in the currency its parent record holds."""
_CODE_SOURCES = frozenset({FieldType.STRING, FieldType.ENUM})
_PARENT_SPELLINGS = ("_parent.", "_parent__", "parent__")
"""How a line's parent is written elsewhere (a column, a list filter): hinted, not taken."""


def parent_currency(currency: str | None) -> str | None:
    """The field of the parent record a line's money field takes its currency from
    (``parent.currency`` → ``currency``), or None when ``currency`` is no such key."""
    if currency is None or not currency.startswith(PARENT_PREFIX):
        return None
    return currency[len(PARENT_PREFIX) :]


def check_currencies(
    entity: EntityDef, documents: Mapping[str, SourceDocument], problems: ProblemCollector
) -> None:
    """Each ``currency:`` names ``company``, a code, or a string or enum field of the entity
    (``parent.<field>`` is left to :func:`check_parent_currencies`)."""
    for field in entity.fields.values():
        currency = field.currency
        if currency is None or currency == COMPANY_CURRENCY or CURRENCY_CODE.fullmatch(currency):
            continue
        if parent_currency(currency) is not None:
            continue
        document = documents.get(field.origin)
        if document is None:
            continue
        source = entity.fields.get(currency)
        if source is not None and source.type in _CODE_SOURCES:
            continue
        if source is not None:
            message = (
                f"currency '{currency}' is a {source.type} field; the field holding the "
                "currency code must be a string or enum field"
            )
        elif problems.has_failed(entity.qualified_name, currency):
            continue  # reported where it failed
        elif currency.startswith(_PARENT_SPELLINGS):
            name = currency.split(".", 1)[-1] if "." in currency else currency.split("__", 1)[1]
            message = (
                f"currency '{currency}': a line takes its parent's currency as "
                f"'{PARENT_PREFIX}{name}'"
            )
        else:
            choices = [f.name for f in entity.fields.values() if f.type in _CODE_SOURCES]
            message = (
                f"currency '{currency}' is not a field of {entity.qualified_name}, "
                f"'{COMPANY_CURRENCY}' or a currency code (three capital letters: EUR)"
                f"{did_you_mean(currency, choices)}"
            )
        problems.at(document, ("fields", field.name, "currency"), message)


def check_parent_currencies(
    entities: Mapping[str, EntityDef],
    documents: Iterable[SourceDocument],
    problems: ProblemCollector,
) -> None:
    """Each ``currency: parent.<field>`` is on a line item entity, and names a string or
    enum field of its parent (one level: the parent's own field, not through a reference).
    Run once every line entity knows its parent."""
    by_name = {document.display_name: document for document in documents}
    for entity in entities.values():
        for field in entity.fields.values():
            name = parent_currency(field.currency)
            document = by_name.get(field.origin)
            if name is None or document is None:
                continue
            message = _parent_problem(entity, field, name, entities, problems)
            if message is not None:
                problems.at(document, ("fields", field.name, "currency"), message)


def _parent_problem(
    entity: EntityDef,
    field: FieldDef,
    name: str,
    entities: Mapping[str, EntityDef],
    problems: ProblemCollector,
) -> str | None:
    """Why ``currency: parent.<name>`` cannot be read on ``entity``, or None."""
    currency = field.currency
    if entity.parent is None:
        return (
            f"currency '{currency}': 'parent' is the record a line belongs to, and "
            f"{entity.qualified_name} is not a line item entity (no 'children' field names "
            "it); name a field of the record, 'company' or a code"
        )
    parent = entities.get(entity.parent)
    if parent is None or problems.has_failed(entity.parent, name):
        return None  # reported where it failed
    if "." in name:
        return (
            f"currency '{currency}': a line reads its parent's own field "
            f"('{PARENT_PREFIX}<field>'), not through a reference"
        )
    source = parent.fields.get(name)
    if source is not None and source.type in _CODE_SOURCES:
        return None
    if source is not None:
        return (
            f"currency '{currency}' is a {source.type} field of {parent.qualified_name} "
            "(parent); the field holding the currency code must be a string or enum field"
        )
    choices = [f.name for f in parent.fields.values() if f.type in _CODE_SOURCES]
    shown = ", ".join(choices) if choices else "none"
    hint = did_you_mean(name, choices) or f" (its string and enum fields: {shown})"
    where = f"{parent.qualified_name} (parent)"
    return f"currency '{currency}': '{name}' is not a field of {where}{hint}"

"""Money fields: a decimal with ``currency:`` is an amount of money, and that key says whose
currency it is (docs/locales.md). Checked once the entity is whole (its customization
applied), at the key that is wrong:

    grand_total: {type: decimal, currency: currency}   # the record's own currency field
    base_total:  {type: decimal, currency: company}    # company: {currency} in tessera.yaml
    fee:         {type: decimal, currency: EUR}        # always euros
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from metadata._errors import did_you_mean
from metadata._model import FieldType

if TYPE_CHECKING:
    from collections.abc import Mapping

    from metadata._errors import ProblemCollector
    from metadata._model import EntityDef
    from metadata._yaml import SourceDocument

COMPANY_CURRENCY = "company"
CURRENCY_CODE = re.compile(r"[A-Z]{3}")
"""An ISO 4217 code as written in a definition (``EUR``)."""
_CODE_SOURCES = frozenset({FieldType.STRING, FieldType.ENUM})


def check_currencies(
    entity: EntityDef, documents: Mapping[str, SourceDocument], problems: ProblemCollector
) -> None:
    """Each ``currency:`` names ``company``, a code, or a string or enum field of the entity."""
    for field in entity.fields.values():
        currency = field.currency
        if currency is None or currency == COMPANY_CURRENCY or CURRENCY_CODE.fullmatch(currency):
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
        else:
            choices = [f.name for f in entity.fields.values() if f.type in _CODE_SOURCES]
            message = (
                f"currency '{currency}' is not a field of {entity.qualified_name}, "
                f"'{COMPANY_CURRENCY}' or a currency code (three capital letters: EUR)"
                f"{did_you_mean(currency, choices)}"
            )
        problems.at(document, ("fields", field.name, "currency"), message)

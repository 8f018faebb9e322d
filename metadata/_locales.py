"""Locale names (``de_DE``, ``en_US``, ``fr_CH``): which ones exist, and their one spelling.

A locale decides how people read numbers, money and dates (docs/locales.md); the instance
has a default (``locale:`` in ``tessera.yaml``) and each user may choose their own. The
names and their data are the Unicode CLDR's, as Babel ships them: a name Babel has no data
for is refused where it is written (the settings file, ``tessera user``, the preferences
page), never at the first page that would format with it.
"""

from __future__ import annotations

import functools
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.localedata import locale_identifiers

from metadata._errors import did_you_mean

MAX_LOCALE_NAME = 35
"""Longer than any CLDR identifier (``ca_ES_VALENCIA`` is 14): a longer text is no locale."""


@functools.cache
def _identifiers() -> frozenset[str]:
    return frozenset(locale_identifiers())


def canonical_locale(name: Any) -> str | None:
    """The one spelling of the locale ``name`` (``de-de`` and ``de_DE`` are ``de_DE``), or
    None if it is no locale Babel has data for."""
    if not isinstance(name, str) or not name or len(name) > MAX_LOCALE_NAME:
        return None
    if not name.isascii() or not name.replace("_", "").replace("-", "").isalnum():
        return None
    try:
        parsed = str(Locale.parse(name.replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        return None
    return parsed if parsed in _identifiers() else None


def locale_problem(name: Any) -> str | None:
    """Why ``name`` is not a locale (``de_DE``), or None."""
    if canonical_locale(name) is not None:
        return None
    shown = name if isinstance(name, str) else repr(name)
    shown = shown[:MAX_LOCALE_NAME].encode("unicode_escape").decode("ascii")
    hint = _hint(shown) if isinstance(name, str) else ""
    return f"'{shown}' is not a locale (a language and country: de_DE, en_US, fr_CH){hint}"


def _hint(shown: str) -> str:
    """The locales of the language named (``de_XX``: de_AT, de_CH, de_DE...), else the
    nearest name."""
    language = shown.replace("-", "_").split("_", 1)[0].lower()
    same = sorted(i for i in _identifiers() if i.split("_", 1)[0] == language and "_" in i)
    if same:
        return f"; {language} has: {', '.join(same[:8])}{'...' if len(same) > 8 else ''}"
    return did_you_mean(shown, _identifiers())

"""Schemathesis hooks for tests/integration/api/test_schemathesis.py (``SCHEMATHESIS_HOOKS``).

A ``cursor`` is opaque: only ``meta.next_cursor`` of a page, for the same sort, is one.
No document can describe which strings those are, so a generated "valid" cursor is
dropped from the requests meant to be accepted (the negative ones keep theirs: they must
be refused, and are).
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    meta = case.meta
    if meta is not None and meta.generation.mode.is_positive and case.query:
        case.query.pop("cursor", None)

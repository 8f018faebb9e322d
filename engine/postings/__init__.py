"""Postings: what documents write to ledgers and balances when they are submitted, and
take back when they are cancelled (docs/ledgers.md).

The ``post`` and ``adjust`` actions (``engine.effects.post``, ``engine.effects.adjust``)
collect; ``settle`` (called by the write pipeline at the end of a submit or cancel) applies
them in a fixed lock order (``engine.postings.voucher`` says which and why; ``moving``
applies the increments, ``appending`` the ledger rows), over the SQL of
``engine.postings.book``.
"""

from __future__ import annotations

from engine.postings.voucher import PERIOD_LOCKED, UNBALANCED, settle

__all__ = ["PERIOD_LOCKED", "UNBALANCED", "settle"]

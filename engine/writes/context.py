"""What travels with a write through the pipeline: who writes, which rules led to it, what
it has loaded and queued."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import FieldError, ValidationFailed
from engine.expressions import Actor

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine.references import ReferenceCache

MAX_CASCADE = 16
NO_USER = Actor("", "", frozenset())
"""The actor of a rule running as a role with no writing user (a scheduled run)."""


@dataclass(frozen=True, slots=True)
class CascadeStep:
    entity: str
    record_id: str
    rule: str
    event: str = ""
    """The event the rule ran on (``create``, ``submit``, …)."""

    def __str__(self) -> str:
        return f"{self.entity}#{self.record_id}:{self.rule}"


@dataclass(frozen=True, slots=True)
class WriteContext:
    """Who is writing, and which rules led to this write; passed explicitly through every
    write."""

    user: Actor | None = None
    """Who writes; None for the command line, fixtures and scheduled runs."""
    cascade: tuple[CascadeStep, ...] = ()
    roles: frozenset[str] | None = None
    """The rights the write runs with: the writer's roles, or the role a rule's actions run
    as. They limit workflow transitions granted to roles, and the records a reference may
    point at (only ones these roles may read). None when no user is authenticated (the
    command line, fixtures) or a rule runs as the system, which such limits do not stop."""
    references: ReferenceCache = dataclasses.field(default_factory=dict)
    """Records that expressions traverse to (``account.name``), loaded in batches."""
    events: list[int] = dataclasses.field(default_factory=list)
    """Outbox events this write (and its cascades) queued; for whoever commits it, to hand
    them to the deliverers after the commit."""
    postings: list[Any] = dataclasses.field(default_factory=list)
    """The postings (``post`` and ``adjust`` actions) a document's submit collected, applied
    together in a fixed lock order once its rules have run (``engine.postings``)."""

    @property
    def user_id(self) -> str | None:
        """What ``created_by`` and ``updated_by`` record."""
        return self.user.id if self.user is not None else None


@dataclass(frozen=True, slots=True)
class PreparedCreate:
    """A create's values, validated and derived, ready for ``EntityStore.create``."""

    values: dict[str, Any]
    triggers_due: bool | None
    """False: no trigger can fire; None: only known once the record is inserted."""
    derived: bool = True
    """False when computed fields and rules wait for referenced records to be loaded."""
    checks: list[Callable[[dict[str, Any]], None]] = dataclasses.field(default_factory=list)
    """Checks of the record as it will be stored that wait for it to be derived (a create
    grant's ``where`` when the defaults and computed fields wait for referenced records):
    run before the INSERT, and what they raise refuses the create."""


def cascade_error(chain: tuple[CascadeStep, ...], step: CascadeStep) -> ValidationFailed | None:
    """The error for running ``step`` after ``chain``, when it would loop or go too deep."""
    if step in chain:
        path = " -> ".join(str(s) for s in (*chain[chain.index(step) :], step))
        message = f"rules trigger each other in a cycle: {path}"
    elif len(chain) >= MAX_CASCADE:
        message = f"rules trigger each other more than {MAX_CASCADE} levels deep"
    else:
        return None
    return ValidationFailed([FieldError("", "rule_cycle", message, rule=step.rule)])

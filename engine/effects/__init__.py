"""Rule effects: what each kind of rule action does, found by its kind.

Every module of this package (and any module a plugin or a test imports) registers the
handler of one action kind with ``@handles(<definition class>)``: a class built once per
action of a rule (``metadata``'s typed definition of that kind) that ``resolve``s the
action's values over the record written and ``run``s it (``ActionHandler``). The write
pipeline knows none of them by name: it asks ``handler_for(action)``. An action with
``async: true`` is run by the handler registered for ``ASYNC`` (``engine.effects.deferred``),
which queues it in the outbox; the deliverer then applies it with ``deferred_applier``.

Adding an action kind: its definition (``metadata.action_kind``), its schema (the
definition's ``schema``), its handler (here), its docs. Nothing else lists the kinds.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from engine.outbox import NewEvent
from metadata import RecordAction

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from engine.access import AccessPolicy, Caller
    from engine.database import Connection
    from engine.expressions import Scope
    from engine.outbox import Outbox
    from engine.store import RecordStore
    from engine.writes.context import WriteContext
    from metadata import ActionDef, EntityDef, RuleDef

ASYNC = "async"
"""The key of the handler of every ``async: true`` action."""

H = TypeVar("H")


class EffectRegistry(Protocol):
    """What an effect may reach beyond the record written."""

    @property
    def outbox(self) -> Outbox: ...

    @property
    def access(self) -> AccessPolicy: ...

    def store_for(self, qualified_name: str) -> EffectStore: ...


class EffectStore(Protocol):
    """An entity's store as effects use it: its write pipeline."""

    @property
    def entity(self) -> EntityDef: ...

    @property
    def registry(self) -> EffectRegistry: ...

    @property
    def records(self) -> RecordStore:
        """Its persistence (reads, such as the ids an update's ``where`` selects)."""

    async def create(
        self, conn: Connection, data: Any, ctx: WriteContext, *, prepared: Any = None
    ) -> dict[str, Any]: ...

    async def update(
        self,
        conn: Connection,
        record_id: int,
        data: Any,
        ctx: WriteContext,
        *,
        expected_version: int | None = None,
        old: dict[str, Any] | None = None,
        check: Callable[[Mapping[str, Any]], None] = ...,
        system_values: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class ActionRun:
    """One rule's actions running for one record: what a handler's ``run`` is given."""

    conn: Connection
    store: EffectStore
    """The store of the entity whose record was written."""
    record: Mapping[str, Any]
    """The record as written (as it was, for a delete)."""
    rule: RuleDef
    event: str
    """``create``, ``update``, ``delete`` or ``schedule``."""
    ctx: WriteContext
    """The triggering write's context (outbox events are added to its ``events``)."""
    nested: WriteContext
    """The context of the writes the actions make (the cascade, the rule's rights)."""
    caller: Caller | None
    """The rights of the rule's writes (``run_as``); None: every right."""
    collected: list[tuple[EffectStore, Any, WriteContext]] | None = None
    """When set, the creates the actions make with every right are collected here instead
    of run: the pipeline then writes them in the same statement as the record that
    triggered them (``EntityStore`` on PostgreSQL, when they are all it has to do)."""
    filled: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Fields of the record written that actions filled (a create's ``set``), by name: the
    rule's later actions are resolved with them."""

    @property
    def record_id(self) -> int:
        return int(self.record["id"])

    async def queue(self, kind: str, payload: Mapping[str, Any]) -> None:
        """Add an outbox event of ``kind`` for this record, in the write's transaction."""
        entity = self.store.entity.qualified_name
        event = NewEvent(kind, entity, str(self.record_id), self.rule.name, payload)
        self.ctx.events.append(await self.store.registry.outbox.add(self.conn, event))


class ActionHandler(Protocol):
    """How one action of one kind runs; built once per action of a rule, from its typed
    definition (``handler(action)``)."""

    def resolve(self, scope: Scope) -> Any:
        """The action's values over the record written. Every action of a rule is
        resolved before any runs; what this raises rejects the write, naming the rule."""

    async def run(self, run: ActionRun, resolved: Any) -> bool:
        """Do it, in the write's transaction; whether it changed the record written (which
        the pipeline then reads again)."""


_HANDLERS: dict[str, Callable[[Any], ActionHandler]] = {}
_APPLIERS: dict[str, Callable[..., Awaitable[None]]] = {}
_loaded = False


def handles(definition: type[ActionDef] | str) -> Callable[[H], H]:
    """Register the decorated class as the handler of ``definition``'s kind (or of a key,
    such as ``ASYNC``)."""
    key = definition if isinstance(definition, str) else definition.kind

    def register(handler: H) -> H:
        _HANDLERS[key] = handler  # type: ignore[assignment]
        return handler

    return register


def applies_deferred(kind: str) -> Callable[[H], H]:
    """Register the decorated function as what the deliverer runs for an ``async: true``
    action of ``kind``: ``(conn, store, record_id, values, ctx)``."""

    def register(apply: H) -> H:
        _APPLIERS[kind] = apply  # type: ignore[assignment]
        return apply

    return register


def handler_for(action: ActionDef) -> ActionHandler:
    """The handler of ``action``, built for it."""
    _load_builtins()
    deferred = isinstance(action, RecordAction) and action.deferred
    key = ASYNC if deferred else action.kind
    try:
        factory = _HANDLERS[key]
    except KeyError:
        raise LookupError(f"no handler is registered for '{key}' actions") from None
    return factory(action)


def plain_handler(action: ActionDef) -> ActionHandler:
    """The handler that runs ``action`` in the write's transaction (even if it is async)."""
    _load_builtins()
    return _HANDLERS[action.kind](action)


def deferred_applier(kind: str) -> Callable[..., Awaitable[None]]:
    _load_builtins()
    try:
        return _APPLIERS[kind]
    except KeyError:
        raise LookupError(f"'{kind}' actions cannot be deferred") from None


def _load_builtins() -> None:
    """Import every module of this package once: each registers its handler."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")

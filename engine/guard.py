"""An entity's store (its write pipeline, ``engine.writes.pipeline.EntityStore``) as one
caller may use it: the single place where roles are enforced.

Every request path that acts for a user (single reads, lists with their filters, sort,
``fields``, ``expand``, ``ref__field`` and ``count``, aggregates, creates, bulk, upserts, updates,
deletes) goes through a ``GuardedStore``, and so do the actions of rules that run as the
user or as a role (``run_as``). The engine's own work (rules running as the system, imports
from the command line) uses the store directly, with full rights.

Records a caller may not see answer 404, as if they did not exist; actions the caller's
roles do not grant answer 403; hidden fields are absent from every answer and refused in
every parameter that could reveal them. A write may not point a reference at a record the
writer may not read: the store answers it like a reference to a missing record (see
``engine.writes.references``, limited by ``WriteContext.roles``). An update must
leave the record inside the caller's update grant (``check_updated``).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from engine.access import Caller, Forbidden, matches
from engine.errors import AppendOnly, BadQuery, FieldError, RecordNotFound
from engine.query import ListRestriction
from metadata import FieldType, Permission, RuleEvent

__all__ = ["Caller", "GuardedStore"]

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from engine.aggregate import AggregateQuery, AggregateResult
    from engine.database import Connection
    from engine.query import ListQuery
    from engine.store import ListResult
    from engine.writes import PreparedCreate, WriteContext
    from engine.writes.pipeline import EntityStore


class GuardedStore:
    def __init__(self, store: EntityStore, caller: Caller) -> None:
        self.store = store
        self.caller = caller
        self.access = caller.access(store.entity.qualified_name)
        if store.entity.append_only:  # a ledger or balance: read, never written by a caller
            read: dict[Permission, Any] = {
                p: f for p, f in self.access.permissions.items() if p is Permission.READ
            }
            self.access = dataclasses.replace(self.access, permissions=read)

    # -- reads ------------------------------------------------------------------------------

    def _restricted(self, query: ListQuery) -> ListQuery:
        """``query`` checked against the caller's rights and limited to what they may read."""
        covered = self.access.require(Permission.READ)
        targets = self._check_query(query)
        restriction = ListRestriction(
            records=covered,
            targets=targets,
            unsearchable=self.access.hidden,
            user=self.caller.parameters(),
        )
        return dataclasses.replace(query, restriction=restriction)

    async def list_page(self, conn: Connection, query: ListQuery) -> ListResult:
        guarded = dataclasses.replace(self._restricted(query), expand=())
        result = await self.store.list_page(conn, guarded)
        for name in query.expand:
            await self._expand(conn, result.records, name)
        for record in result.records:
            self.strip(record)
        return result

    async def aggregate(self, conn: Connection, query: AggregateQuery) -> AggregateResult:
        """Groups and measures over the records the caller may read; a hidden field may
        not be grouped, measured or filtered on."""
        scope = self._restricted(query.scope)
        for name in query.fields:
            self._visible(name, "_aggregate")
        return await self.store.aggregate(conn, dataclasses.replace(query, scope=scope))

    async def readable(self, conn: Connection, record_id: int) -> dict[str, Any]:
        """The stored record, hidden fields included (for the engine's own use), if the
        caller may read it; 404 otherwise."""
        covered = self.access.require(Permission.READ)
        record = await self.store.get(conn, record_id)
        if not matches(covered, record, self.caller.actor):
            raise self._not_found(record_id)
        return record

    async def get(
        self, conn: Connection, record_id: int, expand: Sequence[str] = ()
    ) -> dict[str, Any]:
        record = await self.readable(conn, record_id)
        for name in expand:
            self._check_expand(name)
            await self._expand(conn, [record], name)
        return self.strip(record)

    def check_fields(self, names: Iterable[str]) -> None:
        """``fields=`` of a single read."""
        for name in names:
            self._visible(name, "fields")

    # -- writes ---------------------------------------------------------------------------

    def check_create(self, data: Any) -> None:
        self._not_append_only()
        self.access.require(Permission.CREATE)
        self._check_writable(data)

    def check_prepared(self, prepared: PreparedCreate) -> None:
        """The new record (as it will be stored, before the INSERT) is one the caller's
        create grant covers: ``created_by`` is the caller, the id is not known yet. When its
        defaults and computed fields wait for the records they read, so does the check."""
        covered = self.access.permissions.get(Permission.CREATE)
        if covered is None:
            return
        if not prepared.derived:
            prepared.checks.append(self._check_new)
            return
        self._check_new(prepared.values)

    def _check_new(self, values: Mapping[str, Any]) -> None:
        covered = self.access.permissions.get(Permission.CREATE)
        if covered is None:
            return
        actor = self.caller.actor
        record = {**values, "created_by": actor.id, "updated_by": actor.id}
        if not matches(covered, record, actor):
            raise Forbidden(
                f"your roles allow you to create only {self.store.entity.qualified_name} "
                f"records for which {self._where(Permission.CREATE)}"
            )

    async def create(
        self, conn: Connection, data: Any, ctx: WriteContext, prepared: PreparedCreate | None
    ) -> dict[str, Any]:
        self.check_create(data)
        prepared = prepared if prepared is not None else self.store.prepare_create(data, ctx)
        self.check_prepared(prepared)
        record = await self.store.create(conn, data, ctx, prepared=prepared)
        return self.strip(record)

    async def update(
        self,
        conn: Connection,
        record_id: int,
        data: Any,
        ctx: WriteContext,
        *,
        expected_version: int | None = None,
    ) -> dict[str, Any]:
        self._not_append_only()
        covered = self.access.require(Permission.UPDATE)
        self._check_writable(data)
        old = await self._covered_record(conn, record_id, covered, Permission.UPDATE)
        record = await self.store.update(
            conn,
            record_id,
            data,
            ctx,
            expected_version=expected_version,
            old=old,
            check=self.check_updated,
        )
        return self.strip(record)

    def check_updated(self, record: Mapping[str, Any]) -> None:
        """The record as an update stores it (the old values merged with the new ones,
        computed fields included) is still one the caller's update grant covers: an update
        may not move a record out of the updater's reach, just as PostgreSQL's row security
        checks an UPDATE policy's USING expression on the new row. Called inside the write's
        transaction, before it commits: the ``Forbidden`` rolls the whole write back."""
        covered = self.access.require(Permission.UPDATE)
        if not matches(covered, record, self.caller.actor):
            raise Forbidden(
                f"your roles allow you to update only {self.store.entity.qualified_name} "
                f"records for which {self._where(Permission.UPDATE)}; this change would take "
                "the record out of them"
            )

    async def check_upsert_target(
        self, conn: Connection, record_id: int, field_name: str
    ) -> dict[str, Any]:
        """The record an upsert on ``field_name`` found, if the caller may read it. One
        they may not read answers the 409 a create with the same value would get (the
        value is taken), neither a 404 nor a 403 naming its id."""
        if not self.access.allows(Permission.READ):
            raise self.store.unique_conflict([field_name])
        record = await self.store.get(conn, record_id)
        if not matches(self.access.permissions[Permission.READ], record, self.caller.actor):
            raise self.store.unique_conflict([field_name])
        return record

    async def delete(
        self,
        conn: Connection,
        record_id: int,
        ctx: WriteContext,
        *,
        expected_version: int | None = None,
    ) -> dict[str, Any]:
        """Delete the record if the caller's delete grant covers it; answer it as it was
        (its lines included), for what goes with it (its files)."""
        self._not_append_only()
        covered = self.access.require(Permission.DELETE)
        old = await self._covered_record(conn, record_id, covered, Permission.DELETE)
        await self.store.delete(
            conn, record_id, expected_version=expected_version, ctx=ctx, old=old
        )
        return old

    async def transition(
        self,
        conn: Connection,
        record_id: int,
        event: RuleEvent,
        ctx: WriteContext,
        *,
        expected_version: int | None = None,
    ) -> dict[str, Any]:
        """``_submit`` or ``_cancel``: the caller's ``submit`` or ``cancel`` grant (not
        ``update``) must cover the record."""
        permission = Permission.SUBMIT if event is RuleEvent.SUBMIT else Permission.CANCEL
        covered = self.access.require(permission)
        old = await self._covered_record(conn, record_id, covered, permission)
        record = await self.store.transition(
            conn, record_id, event, ctx, expected_version=expected_version, old=old
        )
        return self.strip(record)

    async def amend(
        self,
        conn: Connection,
        record_id: int,
        ctx: WriteContext,
        *,
        expected_version: int | None = None,
    ) -> dict[str, Any]:
        """``_amend``: the copy is a create, so the ``create`` grant (and a read of the
        original) is what it takes."""
        self.access.require(Permission.CREATE)
        if not self.access.allows(Permission.READ):
            raise self._not_found(record_id)
        old = await self.readable(conn, record_id)
        record = await self.store.amend(
            conn,
            record_id,
            ctx,
            expected_version=expected_version,
            old=old,
            check=self.check_prepared,
        )
        return self.strip(record)

    async def upsert(
        self, conn: Connection, field_name: str, key_value: Any, data: Any, ctx: WriteContext
    ) -> tuple[dict[str, Any], bool]:
        """Update the record whose ``field_name`` is ``key_value`` with an update's checks
        (the update grant, on the record found), or create it with a create's (the create
        grant, and the new record inside it). ``EntityStore.upsert_with`` decides which,
        atomically: concurrent upserts of one new key make one create and updates."""
        self._visible(field_name, "the key")

        async def create(body: Any, key: str) -> dict[str, Any] | None:
            self.check_create(body)
            prepared = self.store.prepare_create(body, ctx)
            self.check_prepared(prepared)
            record = await self.store.create_unless_taken(conn, body, ctx, key, prepared=prepared)
            return None if record is None else self.strip(record)

        async def update(record_id: int) -> dict[str, Any]:
            await self.check_upsert_target(conn, record_id, field_name)
            return await self.update(conn, record_id, data, ctx)

        return await self.store.upsert_with(conn, field_name, key_value, data, create, update)

    # -- helpers ------------------------------------------------------------------------------

    def _not_append_only(self) -> None:
        """Ledgers and balances are written by postings only (405 to every client)."""
        entity = self.store.entity
        if entity.append_only:
            what = "ledger" if entity.ledger is not None else "balance"
            raise AppendOnly(
                f"{entity.qualified_name} is a {what}: only the postings of documents write "
                "it; submit or cancel the document instead"
            )

    async def _covered_record(
        self, conn: Connection, record_id: int, covered: Any, permission: Permission
    ) -> dict[str, Any]:
        """The stored record, if the caller may see it (404) and ``permission`` covers it
        (403); read once, and handed to the store's write."""
        if not self.access.allows(Permission.READ):
            raise self._not_found(record_id)
        record = await self.readable(conn, record_id)
        if not matches(covered, record, self.caller.actor):
            raise Forbidden(
                f"your roles allow you to {permission.value} only "
                f"{self.store.entity.qualified_name} records for which {self._where(permission)}"
            )
        return record

    def _where(self, permission: Permission) -> str:
        wheres = self.caller.policy.wheres(
            self.store.entity.qualified_name, self.caller.roles, permission
        )
        return " or ".join(wheres)

    def _check_writable(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        refused = sorted(name for name in data if name in self.access.readonly)
        if refused:
            raise Forbidden(
                f"your roles do not allow you to write {', '.join(refused)}",
                [FieldError(name, "readonly", "you may not write this field") for name in refused],
            )

    def _check_query(self, query: ListQuery) -> tuple[tuple[str, Any], ...]:
        targets: dict[str, Any] = {}
        for flt in query.filters:
            self._visible(flt.column, "a filter")
            if flt.subfield is not None:
                target = self._target(flt.column)
                access = self.caller.access(target)
                covered = access.require(Permission.READ)
                if flt.subfield in access.hidden:
                    raise BadQuery(f"unknown filter field '{flt.column}__{flt.subfield}'")
                if covered is not None:
                    targets[flt.column] = covered
        for name, _ in query.sort:
            self._visible(name, "sort")
        for name in query.fields or ():
            self._visible(name, "fields")
        for name in query.expand:
            self._check_expand(name)
        return tuple(targets.items())

    def _check_expand(self, name: str) -> None:
        self._visible(name, "expand")
        self.caller.access(self._target(name)).require(Permission.READ)

    def _visible(self, name: str, where: str) -> None:
        if name in self.access.hidden:
            raise BadQuery(f"unknown field '{name}' in {where}")

    def _target(self, name: str) -> str:
        field = self.store.entity.fields.get(name)
        if field is None or field.type is not FieldType.REFERENCE or field.to is None:
            raise BadQuery(f"'{name}' is not a reference field")
        return field.to

    async def _expand(self, conn: Connection, records: list[dict[str, Any]], name: str) -> None:
        target = self.store.registry.store_for(self._target(name))
        access = self.caller.access(target.entity.qualified_name)
        covered = access.permissions.get(Permission.READ)
        ids = sorted({int(r[name]) for r in records if r.get(name) is not None})
        found = await target.get_many(conn, ids)
        for record in records:
            value = record.get(name)
            linked = found.get(str(value)) if value is not None else None
            if linked is not None and matches(covered, linked, self.caller.actor):
                record[name] = {k: v for k, v in linked.items() if k not in access.hidden}

    def strip(self, record: dict[str, Any]) -> dict[str, Any]:
        """``record`` without the fields the caller may not see."""
        for name in self.access.hidden:
            record.pop(name, None)
        return record

    def _not_found(self, record_id: int) -> RecordNotFound:
        return RecordNotFound(f"no {self.store.entity.qualified_name} record with id {record_id}")

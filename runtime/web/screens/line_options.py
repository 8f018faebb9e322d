"""What a picker offers for a reference to a line item entity (an invoice line's
``sales_order_line``, any ``to:`` naming a ``children`` entity): lines have no list, no
endpoint and no grants of their own, so they are found through their parents, with the
signed-in user's read access to the parent entity (its row filters included): a line is
offered, and named, exactly when its parent may be read.

A line is labelled with its parent's title and its own: the line entity's ``title`` when
it declares one, else the title of the record its first reference names (the item of an
order line), else its position: ``SO-2026-00003 · Office desk 160 cm``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.access import Forbidden
from engine.errors import RecordNotFound
from metadata import FieldType, Permission
from runtime.api.problems import ApiProblem
from runtime.plumbing import guard_for

if TYPE_CHECKING:
    from engine.database import Connection
    from metadata import EntityDef
    from runtime.web.screens.base import Screen, WebUI
    from runtime.web.session import Session


@dataclass(frozen=True, slots=True)
class LineChoice:
    id: str
    label: str


class LinePicker:
    """The lines of ``line`` (a line item entity) a user may pick, found through their
    parents' list and read with the user's rights on the parent entity."""

    def __init__(self, ui: WebUI, session: Session, line: EntityDef) -> None:
        project = ui.live.current.project
        if line.parent is None:
            raise TypeError(f"{line.qualified_name} is not a line item entity")
        parent = project.entities[line.parent]
        self.ui = ui
        self.line = line
        self.parent = parent
        self.screen: Screen = ui.screen_for(session, parent.pack, parent.name)
        self.screen.access.require(Permission.READ)
        self.children = next(
            name
            for name, field in parent.fields.items()
            if field.type is FieldType.CHILDREN and field.entity == line.qualified_name
        )
        self.naming = line.title or next(
            (name for name, f in line.fields.items() if f.type is FieldType.REFERENCE),
            None,
        )
        self._titles: dict[str, str] = {}

    async def choices(
        self, conn: Connection, *, q: str, selected: str, limit: int
    ) -> list[LineChoice]:
        """Up to ``limit`` lines of the most recent readable parents: those whose parent
        matches ``q`` (the list's search), then those whose label contains it; the line
        ``selected`` first when it is not among them and its parent may be read."""
        found: dict[str, LineChoice] = {}
        searches = [q, ""] if q else [""]
        for search in searches:
            for choice in await self._lines(conn, search, limit):
                if search == q or q.casefold() in choice.label.casefold():
                    found.setdefault(choice.id, choice)
        choices = list(found.values())[:limit]
        if selected and selected not in found:
            current = await self.choice(conn, selected)
            if current is not None:
                choices.insert(0, current)
        return choices

    async def choice(self, conn: Connection, line_id: str) -> LineChoice | None:
        """The line ``line_id`` with its label, if its parent may be read."""
        if not line_id.isdigit() or len(line_id) > 18:
            return None
        store = self.ui.live.current.model.store_for(self.line.qualified_name)
        parent_id = await store.records.parent_id(conn, int(line_id))
        if parent_id is None:
            return None
        try:
            parent = await self.screen.guard.get(conn, parent_id)
        except (RecordNotFound, Forbidden):
            return None
        for position, line in enumerate(parent.get(self.children) or (), start=1):
            if isinstance(line, dict) and str(line.get("id")) == line_id:
                return await self._choice(conn, parent, line, position)
        return None

    async def _lines(self, conn: Connection, q: str, limit: int) -> list[LineChoice]:
        pairs = [("limit", str(limit)), ("sort", "-created_at")]  # the newest first
        if q:
            pairs.append(("q", q))
        result = await self.screen.guard.list_page(conn, self.screen.store.parser.parse(pairs))
        choices: list[LineChoice] = []
        for parent in result.records:
            for position, line in enumerate(parent.get(self.children) or (), start=1):
                if isinstance(line, dict) and len(choices) < limit:
                    choices.append(await self._choice(conn, parent, line, position))
        return choices

    async def _choice(
        self, conn: Connection, parent: dict[str, Any], line: dict[str, Any], position: int
    ) -> LineChoice:
        title = parent.get(self.parent.title or "") or f"{self.parent.label} #{parent['id']}"
        return LineChoice(str(line["id"]), f"{title} · {await self._name(conn, line, position)}")

    async def _name(self, conn: Connection, line: dict[str, Any], position: int) -> str:
        field = self.line.fields.get(self.naming or "")
        value = line.get(self.naming or "")
        if field is None or value in (None, ""):
            return f"line {position}"
        if field.type is not FieldType.REFERENCE:
            return str(value)
        key = f"{field.to}:{value}"
        if key not in self._titles:
            model = self.ui.live.current.model
            target = model.store_for(field.to or "")
            guard = guard_for(target, self.ui.actor(self.screen.session), model)
            title = None
            with contextlib.suppress(RecordNotFound, Forbidden, ApiProblem, ValueError):
                title = (await guard.get(conn, int(str(value)))).get(target.entity.title or "id")
            self._titles[key] = str(title or f"#{value}")
        return self._titles[key]

"""A pack's dashboards: number, bar and line tiles, each computed through the guard."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

from fastapi import Request  # noqa: TC002 - FastAPI reads the annotations
from starlette.responses import Response  # noqa: TC002 - FastAPI reads the annotations

from engine.access import Forbidden
from engine.errors import BadQuery, UnknownEntity
from metadata import FieldType, TileKind
from runtime.web.charts import bar_chart, line_chart
from runtime.web.handling import screen
from runtime.web.screens.base import Family
from runtime.web.widgets import choice, display

if TYPE_CHECKING:
    from metadata import TileDef
    from runtime.formatting import Formats
    from runtime.web.session import Session


class Dashboards(Family):
    routes = (("GET", "/app/_dashboards/{pack}/{name}", "dashboard"),)

    @screen
    async def dashboard(self, request: Request, pack: str, name: str) -> Response:
        """A pack's dashboard: each tile computed through the guard, so every viewer sees
        the figures of the records they may read; a tile they may not see says so."""
        session = await self.ui.session(request)
        dashboard = self.live.current.project.dashboards.get(f"{pack}.{name}")
        if dashboard is None:
            raise UnknownEntity(f"no dashboard '{pack}.{name}'")
        tiles = []
        async with self.database.get().connection() as conn:
            for tile in dashboard.tiles:
                tiles.append(await self._tile(conn, session, tile))
        roles = self.ui.actor(session).roles
        reports = [  # the pack's reports the user may run, a click from its dashboards
            r.definition
            for r in self.live.current.model.reports.values()
            if r.definition.pack == pack and r.may_run(roles)
        ]
        return await self.render(
            request,
            "dashboard.html",
            session=session,
            title=dashboard.label,
            dashboard=dashboard,
            tiles=tiles,
            reports=reports,
        )

    async def _tile(self, conn: Any, session: Session, tile: TileDef) -> dict[str, Any]:
        pack, name = tile.entity.split(".", 1)
        screen = self.ui.screen_for(session, pack, name)
        entity = screen.store.entity
        shown: dict[str, Any] = {
            "label": tile.label,
            "kind": tile.kind.value,
            "rows": [],
            "problem": None,
        }
        pairs = list(tile.filter)
        if tile.measure != "count":
            pairs.append(("measures", tile.measure))
        if tile.kind is TileKind.TABLE and tile.group_by and tile.columns:
            groups = f"{tile.group_by},{tile.columns}"
            pairs += [("group_by", groups), ("sort", groups)]
        elif tile.group_by:
            pairs.append(("group_by", tile.group_by))
            if tile.kind is TileKind.BAR:  # the largest bars, largest first
                pairs += [("sort", "-" + tile.measure), ("limit", str(tile.limit))]
            else:  # a line follows its groups' order
                pairs += [("sort", tile.group_by)]
        try:
            query = screen.store.aggregate_parser.parse(pairs)
            result = await screen.guard.aggregate(conn, query)
        except (Forbidden, BadQuery):
            shown["problem"] = "Not available with your roles."
            return shown
        if tile.kind is TileKind.NUMBER:
            value = result.rows[0][tile.measure] if result.rows else 0
            shown["value"] = display(value, None, self.ui.formats(session)) or "0"
            shown["link"] = f"/app/{pack}/{name}?" + urllib.parse.urlencode(list(tile.filter))
            return shown
        assert tile.group_by is not None
        shown["measure_label"] = _measure_label(tile.measure, entity)
        if tile.kind is TileKind.TABLE:
            shown.update(_grid(result.rows, tile, entity, self.ui.formats(session)))
            return shown
        group_field = entity.fields.get(tile.group_by.partition("__")[0])
        titles: dict[Any, str] = {}
        if group_field is not None and group_field.type is FieldType.REFERENCE:
            # a reference's bars are labelled by the titles of the records, as lists show them
            keys = [row[tile.group_by] for row in result.rows if row[tile.group_by] is not None]
            titles = await self._titles(conn, session, group_field.to or "", keys)
        elif group_field is not None and group_field.type is FieldType.ENUM:
            titles = {value: choice(value) for value in group_field.values}
        rows = [
            (titles.get(row[tile.group_by], row[tile.group_by]), row[tile.measure])
            for row in result.rows
        ]
        shown["rows"] = rows
        formats = self.ui.formats(session)
        shown["chart"] = (
            bar_chart(rows, formats) if tile.kind is TileKind.BAR else line_chart(rows, formats)
        )
        shown["group_label"] = group_field.label if group_field else tile.group_by
        return shown

    async def _titles(
        self, conn: Any, session: Session, target: str, keys: list[Any]
    ) -> dict[Any, str]:
        """The titles of the records ``keys`` of ``target`` the user may read (by id)."""
        pack, _, name = target.partition(".")
        try:
            screen = self.ui.screen_for(session, pack, name)
            title = screen.store.entity.title
            if not keys or not title or title in screen.access.hidden:
                return {}
            ids = ",".join(str(key) for key in keys)
            pairs = [("id__in", ids), ("fields", f"id,{title}"), ("limit", str(len(keys)))]
            found = await screen.guard.list_page(conn, screen.store.parser.parse(pairs))
        except (Forbidden, BadQuery, UnknownEntity):  # not readable, or a line entity
            return {}
        return {
            key: str(record[title])
            for record in found.records
            for key in keys
            if str(key) == str(record["id"]) and record.get(title) is not None
        }


def _grid(
    rows: list[dict[str, Any]], tile: TileDef, entity: Any, formats: Formats
) -> dict[str, Any]:
    """A table tile's cells: one row per value of ``group_by`` (in the aggregate's order)
    and one column per value of ``columns`` (an enum's in its declared order, others
    sorted), the measure in each cell, empty where no record is; headings and figures as
    the reader reads them (an enum by its label)."""
    assert tile.group_by is not None
    assert tile.columns is not None
    row_keys: list[Any] = []
    column_keys: list[Any] = []
    cells: dict[tuple[Any, Any], Any] = {}
    for row in rows:
        key, column = row[tile.group_by], row[tile.columns]
        if key not in row_keys:
            row_keys.append(key)
        if column not in column_keys:
            column_keys.append(column)
        cells[(key, column)] = row[tile.measure]
    field = entity.fields.get(tile.columns.partition("__")[0])
    group = entity.fields.get(tile.group_by.partition("__")[0])
    if field is not None and field.values:  # an enum's columns in its declared order
        order = {value: index for index, value in enumerate(field.values)}
        column_keys.sort(key=lambda c: order.get(c, len(order)))
    else:
        column_keys.sort(key=lambda c: (c is None, str(c)))
    return {
        "group_label": group.label if group else tile.group_by,
        "columns_label": field.label if field else tile.columns,
        "columns": [_heading(c, field, formats) for c in column_keys],
        "grid": [
            (
                _heading(key, group, formats),
                [display(cells.get((key, c)), None, formats) for c in column_keys],
            )
            for key in row_keys
        ],
    }


def _heading(value: Any, field: Any, formats: Formats) -> str:
    if value is None:
        return "(empty)"
    if field is not None and field.type is FieldType.ENUM:
        return choice(value)
    return display(value, None, formats) or "(empty)"


def _measure_label(measure: str, entity: Any) -> str:
    if measure == "count":
        return "Count"
    name, _, function = measure.rpartition("__")
    field = entity.fields.get(name)
    words = {"sum": "Total", "avg": "Average", "min": "Lowest", "max": "Highest"}
    return f"{words.get(function, function)} {(field.label if field else name).lower()}"

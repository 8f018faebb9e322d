"""The 360° page: a record and the records that refer to it."""

from __future__ import annotations

from fastapi import Request  # noqa: TC002 - FastAPI reads the annotations
from starlette.responses import Response  # noqa: TC002 - FastAPI reads the annotations

from metadata import FieldType, Permission
from metadata._fieldkeys import TYPE_TRAITS
from runtime.titles import add_titles, titled_references
from runtime.web.handling import screen
from runtime.web.screens.base import Family, parse_record_id
from runtime.web.widgets import list_columns

RELATED_ROWS = 10


class Related(Family):
    routes = (("GET", "/app/{pack}/{entity}/{record_id}/related", "related"),)

    @screen
    async def related(self, request: Request, pack: str, entity: str, record_id: str) -> Response:
        """The 360° page: the record, and the records of every entity (in any enabled pack)
        that refer to it, as far as the user may read them."""
        session = await self.ui.session(request)
        screen = self.ui.screen_for(session, pack, entity)
        model = self.live.current.model
        qualified = screen.store.entity.qualified_name
        groups = []
        async with self.database.get().connection() as conn:
            references = titled_references(screen.guard, screen.store.entity.fields)
            record = await screen.guard.get(conn, parse_record_id(record_id), references)
            add_titles([record], screen.store, references)
            for store in model.public_stores():
                for field in store.entity.fields.values():
                    if field.type is not FieldType.REFERENCE or field.to != qualified:
                        continue
                    other = self.ui.screen_for(session, store.entity.pack, store.entity.name)
                    if not other.may(Permission.READ) or field.name in other.access.hidden:
                        continue
                    pairs = [
                        (field.name, record_id),
                        ("limit", str(RELATED_ROWS)),
                        ("count", "true"),
                    ]
                    result = await other.guard.list_page(conn, store.parser.parse(pairs))
                    columns = [
                        c for c in list_columns(store.entity, other.access) if c.name != field.name
                    ]
                    groups.append(
                        {
                            "entity": store.entity,
                            "field": field,
                            "records": result.records,
                            "count": result.count or 0,
                            "columns": columns[:5],
                        }
                    )
        entity_def = screen.store.entity
        title = record.get(entity_def.title) if entity_def.title else None
        fields = [
            f
            for f in entity_def.fields.values()
            if f.name not in screen.access.hidden and TYPE_TRAITS[f.type].scalar
        ]
        return await self.render(
            request,
            "related.html",
            session=session,
            screen=screen,
            entity=entity_def,
            record=record,
            title=str(title or f"{entity_def.label} #{record_id}"),
            fields=fields,
            groups=groups,
        )

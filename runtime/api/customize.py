"""``/api/v1/_meta/entities/{pack}.{entity}/fields``: add, change and remove fields on a
live instance.

Each call edits the entity's overlay file in place (``metadata.overlay_editor``), migrates,
and swaps this process's definitions; other processes follow within their poll interval
(``runtime.live``). Until roles exist (issue 5) the calls are refused unless the instance
sets ``meta_api_writes: true``.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from metadata import DefinitionError
from metadata.overlay_editor import (
    OverlayEditError,
    add_field,
    read_overlay,
    remove_field,
    update_field,
)
from runtime.api.bodies import read_json
from runtime.api.meta import describe_field
from runtime.api.problems import ApiProblem, json_default
from runtime.customizing import CustomizationRejected, apply_change, overlay_path

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from metadata import EntityDef
    from runtime.customizing import AppliedChange
    from runtime.live import LiveDefinitions

_QUALIFIED = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
_BODY_LIMIT = 64 * 1024


def customize_router(live: LiveDefinitions) -> APIRouter:
    handlers = _FieldCustomizer(live)
    router = APIRouter(prefix="/api/v1/_meta/entities", tags=["Customization"])
    router.add_api_route(
        "/{qualified}/fields",
        handlers.create_field,
        methods=["POST"],
        status_code=201,
        summary="Add a field through the entity's customization file, and migrate",
    )
    router.add_api_route(
        "/{qualified}/fields/{name}",
        handlers.patch_field,
        methods=["PATCH"],
        summary="Change a field (labels, or tighter rules for a pack's field), and migrate",
    )
    router.add_api_route(
        "/{qualified}/fields/{name}",
        handlers.delete_field,
        methods=["DELETE"],
        status_code=204,
        summary="Remove a field's customization (an added field is dropped), and migrate",
    )
    return router


class _FieldCustomizer:
    def __init__(self, live: LiveDefinitions) -> None:
        self.live = live
        self.settings = live.settings
        self.lock = asyncio.Lock()

    async def create_field(self, qualified: str, request: Request) -> Response:
        entity = self._entity(qualified)
        body = await _object_body(request)
        name = body.pop("name", None)
        if not isinstance(name, str) or not name:
            raise _missing("name")
        if name in entity.fields:
            raise ApiProblem(409, f"{qualified} already has a field '{name}'", "conflict")
        if "type" not in body:
            raise _missing("type")
        applied = await self._change(entity, lambda path: add_field(path, name, body))
        return _answer(applied, qualified, name, 201)

    async def patch_field(self, qualified: str, name: str, request: Request) -> Response:
        entity = self._entity(qualified)
        if name not in entity.fields:
            raise ApiProblem(404, f"{qualified} has no field '{name}'", "not-found")
        body = await _object_body(request)
        if not body:
            raise ApiProblem(400, "the body lists no change", "bad-request")
        applied = await self._change(entity, lambda path: update_field(path, name, body))
        return _answer(applied, qualified, name, 200)

    async def delete_field(
        self, qualified: str, name: str, allow_data_loss: bool = False
    ) -> Response:
        entity = self._entity(qualified)
        overlay = await asyncio.to_thread(read_overlay, self._overlay(entity))
        if name not in (overlay.get("fields") or {}):
            raise ApiProblem(404, f"{qualified}.{name} has no customization to remove", "not-found")
        await self._change(
            entity, lambda path: remove_field(path, name), allow_data_loss=allow_data_loss
        )
        return Response(status_code=204)

    def _entity(self, qualified: str) -> EntityDef:
        if not self.settings.meta_api_writes:
            raise ApiProblem(
                403,
                "changing definitions through the API is turned off; set "
                "'meta_api_writes: true' in tessera.yaml to allow it",
                "forbidden",
            )
        entities = self.live.current.project.entities
        entity = entities.get(qualified) if _QUALIFIED.match(qualified) else None
        if entity is None:
            raise ApiProblem(404, f"no entity '{qualified}' is enabled", "not-found")
        return entity

    def _overlay(self, entity: EntityDef) -> Path:
        try:
            return overlay_path(self.settings, entity.pack, entity.name)
        except CustomizationRejected as exc:
            raise ApiProblem(409, str(exc), "conflict") from None

    async def _change(
        self, entity: EntityDef, edit: Callable[[Path], None], *, allow_data_loss: bool = False
    ) -> AppliedChange:
        path = self._overlay(entity)
        async with self.lock:
            try:
                applied = await asyncio.to_thread(
                    apply_change,
                    self.settings,
                    path,
                    lambda: edit(path),
                    allow_data_loss=allow_data_loss,
                )
            except OverlayEditError as exc:
                raise ApiProblem(409, str(exc), "conflict") from None
            except DefinitionError as exc:
                raise ApiProblem(
                    422,
                    f"the change would make the definitions invalid ({len(exc.problems)} "
                    "problems); nothing was changed",
                    "invalid-definition",
                    errors=[{"code": "definition", "message": str(p)} for p in exc.problems],
                ) from None
            except CustomizationRejected as exc:
                raise ApiProblem(
                    409,
                    "the migration was refused; nothing was changed",
                    "migration-refused",
                    errors=[{"code": "migration", "message": r} for r in exc.reasons],
                ) from None
            await self.live.install(applied.project, applied.generation)
        return applied


def _missing(key: str) -> ApiProblem:
    return ApiProblem(
        422,
        f"the body needs the field's '{key}'",
        "validation",
        errors=[{"field": key, "code": "required", "message": "required"}],
    )


def _answer(applied: AppliedChange, qualified: str, name: str, status: int) -> Response:
    entity = applied.project.entities[qualified]
    body: dict[str, Any] = {
        "data": describe_field(entity.fields[name]) if name in entity.fields else None,
        "meta": {"migration": [s.description for s in applied.plan.steps]},
    }
    return Response(
        orjson.dumps(body, default=json_default), status_code=status, media_type="application/json"
    )


async def _object_body(request: Request) -> dict[str, Any]:
    body = await read_json(request, _BODY_LIMIT)
    if not isinstance(body, dict):
        raise ApiProblem(400, "the body must be a JSON object", "bad-request")
    return body

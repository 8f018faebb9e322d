"""``GET /api/v1/{pack}/_reports`` and ``GET /api/v1/{pack}/_reports/{name}``: the reports a
pack declares (``reports/<name>.yaml``), run for the signed-in caller with the parameters
of the query string, as JSON or (``format=csv``) as CSV.

The web UI's report page renders the same ``report_document`` and ``report_csv``, so the
page, its download and the API never disagree. Each report is also a path of its own in
the OpenAPI document (``report_paths``), with its parameters and their types.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from engine.errors import BadQuery, UnknownEntity
from metadata import ParameterType
from runtime.api.problems import json_response
from runtime.auth import current_user
from runtime.plumbing import actor_of, guard_for

if TYPE_CHECKING:
    from collections.abc import Sequence

    from engine import EngineModel
    from engine.expressions import Actor
    from engine.reports import CompiledReport, ReportResult
    from metadata import ReportCheckDef
    from runtime.live import LiveDefinitions
    from runtime.plumbing import DatabaseHolder

FORMATS = ("json", "csv")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def find_report(model: EngineModel, pack: str, name: str) -> CompiledReport:
    report = model.reports.get(f"{pack}.{name}")
    if report is None:
        raise UnknownEntity(f"no report '{pack}.{name}'")
    return report


def runnable_reports(model: EngineModel, actor: Actor, pack: str) -> list[CompiledReport]:
    """The reports of ``pack`` that ``actor``'s roles may run, in definition order."""
    return [
        r for r in model.reports.values() if r.definition.pack == pack and r.may_run(actor.roles)
    ]


async def run_report(
    model: EngineModel,
    database: DatabaseHolder,
    report: CompiledReport,
    actor: Actor,
    pairs: Sequence[tuple[str, str]],
) -> ReportResult:
    """``report`` for ``actor`` with the query-string ``pairs`` (403 when their roles may
    not run it or read an entity of it, 400 on a bad parameter)."""
    report.check_access(actor)
    parameters = report.parameters(pairs, actor)
    async with database.get().connection() as conn:
        return await report.run(
            conn,
            parameters=parameters,
            guard_of=lambda entity: guard_for(model.store_for(entity), actor, model),
            actor=actor,
        )


def split_format(pairs: Sequence[tuple[str, str]]) -> tuple[str, list[tuple[str, str]]]:
    """``format`` (json or csv) and the report's own parameters."""
    formats = [value for key, value in pairs if key == "format"]
    if len(formats) > 1:
        raise BadQuery("'format' is given more than once")
    chosen = formats[0] if formats else "json"
    if chosen not in FORMATS:
        raise BadQuery(f"'format' must be one of {', '.join(FORMATS)}")
    return chosen, [(key, value) for key, value in pairs if key != "format"]


def describe_report(report: CompiledReport) -> dict[str, Any]:
    definition = report.definition
    return {
        "name": definition.name,
        "pack": definition.pack,
        "label": definition.label,
        "description": definition.description,
        "parameters": [
            {
                "name": p.name,
                "type": p.type.value,
                "label": p.label,
                "required": p.required,
                **({"values": list(p.values)} if p.values else {}),
                **({"to": p.to} if p.to else {}),
            }
            for p in definition.parameters
        ],
        "columns": [{"name": c.name, "label": c.label} for c in definition.columns],
    }


def parameter_texts(values: dict[str, Any]) -> dict[str, Any]:
    """The parameters of a run as a query string writes them (dates as YYYY-MM-DD)."""
    return {
        name: value.isoformat() if hasattr(value, "isoformat") else value
        for name, value in values.items()
    }


def report_document(report: CompiledReport, result: ReportResult) -> dict[str, Any]:
    """The JSON of one run: the parameters used, each section's lines and subtotal, the
    totals; figures are decimals as strings (exact)."""
    return {
        **describe_report(report),
        "parameters_used": parameter_texts(result.parameters),
        "sections": [
            {
                "name": section.name,
                "label": section.label,
                "lines": [
                    {"key": line.key, "label": line.label, "values": line.values}
                    for line in section.lines
                ],
                "total": section.total,
                "truncated": section.truncated,
            }
            for section in result.sections
        ],
        "totals": [
            {"name": total.name, "label": total.label, "values": total.values}
            for total in result.totals
        ],
    }


def report_csv(report: CompiledReport, result: ReportResult) -> str:
    """The run as a spreadsheet opens it: a row per line under its section's heading, the
    section's total, then the totals. A label starting like a formula is quoted with ``'``
    (account names are user data)."""
    columns = [c.name for c in report.definition.columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["section", "line", *(c.label for c in report.definition.columns)])

    def figures(values: dict[str, Any]) -> list[str]:
        return ["" if values.get(c) is None else str(values.get(c)) for c in columns]

    for section in result.sections:
        for line in section.lines:
            writer.writerow([_cell(section.label), _cell(line.label), *figures(line.values)])
        writer.writerow([_cell(section.label), "Total", *figures(section.total)])
    for total in result.totals:
        writer.writerow(["", _cell(total.label), *figures(total.values)])
    return buffer.getvalue()


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def reports_router(live: LiveDefinitions, database: DatabaseHolder) -> APIRouter:
    """The reports API; each report's own path with its parameters is documented by
    ``report_paths``, so these generic routes stay out of the OpenAPI document."""
    router = APIRouter(prefix="/api/v1", include_in_schema=False)

    @router.get("/{pack}/_reports")
    async def list_reports(request: Request, pack: str) -> Response:
        model = live.current.model
        actor = actor_of(current_user(request), model)
        if pack not in model.project.modules:  # a mistyped pack is not a pack without reports
            shown = pack if len(pack) <= 40 else pack[:40] + "…"
            raise UnknownEntity(f"no pack '{shown}'")
        reports = runnable_reports(model, actor, pack)
        return json_response({"data": [describe_report(r) for r in reports]})

    @router.get("/{pack}/_reports/{name}")
    async def report(request: Request, pack: str, name: str) -> Response:
        model = live.current.model
        actor = actor_of(current_user(request), model)
        compiled = find_report(model, pack, name)
        chosen, pairs = split_format(request.query_params.multi_items())
        result = await run_report(model, database, compiled, actor, pairs)
        if chosen == "csv":
            return Response(
                report_csv(compiled, result),
                media_type="text/csv; charset=utf-8",
                headers={"content-disposition": f'attachment; filename="{name}.csv"'},
            )
        return json_response({"data": report_document(compiled, result)})

    return router


_SCHEMA_OF = {
    ParameterType.DATE: {"type": "string", "format": "date"},
    ParameterType.REFERENCE: {"type": "string", "pattern": "^[1-9][0-9]*$"},
}
_FIGURES = {"type": "object", "additionalProperties": {"type": ["string", "integer", "null"]}}
REPORT_SCHEMA = {
    "type": "object",
    "required": ["name", "label", "parameters_used", "sections", "totals"],
    "properties": {
        "name": {"type": "string"},
        "pack": {"type": "string"},
        "label": {"type": "string"},
        "description": {"type": ["string", "null"]},
        "parameters": {"type": "array", "items": {"type": "object"}},
        "columns": {"type": "array", "items": {"type": "object"}},
        "parameters_used": {"type": "object"},
        "sections": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "label": {"type": "string"},
                    "lines": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "key": {},
                                "label": {"type": "string"},
                                "values": _FIGURES,
                            },
                        },
                    },
                    "total": _FIGURES,
                    "truncated": {"type": "boolean"},
                },
            },
        },
        "totals": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "label": {"type": "string"},
                    "values": _FIGURES,
                },
            },
        },
    },
}


def _bad_request(checks: Sequence[ReportCheckDef]) -> str:
    """The 400's description: a parameter not of its type, unknown or empty, and each of
    the report's checks, which relate parameters in ways a schema cannot state."""
    why = "A parameter is not valid (not of its type, unknown, given twice or empty)"
    if not checks:
        return why
    failed = "; ".join(f"{c.message} (when {c.condition} does not hold)" for c in checks)
    return f"{why}, or the parameters fail a check of the report: {failed}"


def report_paths(model: EngineModel) -> dict[str, Any]:
    """One OpenAPI path per report, its parameters typed, answering JSON or CSV; and each
    pack's list of the reports the caller may run."""
    paths: dict[str, Any] = {}
    for report in model.reports.values():
        definition = report.definition
        paths[f"/api/v1/{definition.pack}/_reports"] = {
            "get": {
                "tags": [f"{definition.pack} reports"],
                "summary": f"The reports of {definition.pack} the caller may run",
                "operationId": f"reports_{definition.pack}",
                "responses": {
                    "200": {
                        "description": "The reports, with their parameters and columns",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        }
        parameters: list[dict[str, Any]] = [
            {
                "name": p.name,
                "in": "query",
                "required": False,
                "description": p.label + ("" if p.default is None else f" (default: {p.default})"),
                "schema": (
                    {"type": "string", "enum": list(p.values)}
                    if p.type is ParameterType.CHOICE
                    else _SCHEMA_OF[p.type]
                ),
            }
            for p in definition.parameters
        ]
        parameters.append(
            {
                "name": "format",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "enum": list(FORMATS), "default": "json"},
            }
        )
        ok = {
            "description": "The report for the parameters",
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["data"],
                        "properties": {"data": REPORT_SCHEMA},
                    }
                },
                "text/csv": {"schema": {"type": "string"}},
            },
        }
        problem = {"$ref": "#/components/schemas/Problem"}
        responses: dict[str, Any] = {"200": ok}
        for status, why in (
            ("400", _bad_request(definition.checks)),
            ("401", "Not signed in"),
            ("403", "The caller's roles may not run the report or read its entities"),
        ):
            responses[status] = {
                "description": why,
                "content": {"application/problem+json": {"schema": problem}},
            }
        paths[f"/api/v1/{definition.pack}/_reports/{definition.name}"] = {
            "get": {
                "tags": [f"{definition.pack} reports"],
                "summary": definition.label,
                "description": definition.description or definition.label,
                "operationId": f"report_{definition.pack}_{definition.name}",
                "parameters": parameters,
                "responses": responses,
            }
        }
    return paths

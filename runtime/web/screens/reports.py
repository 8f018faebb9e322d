"""A pack's reports (``reports/<name>.yaml``): the parameter form (a reference parameter
picked by title, as a record form's reference), defaults filled in, and the figures, run
through the guard as ``GET /api/v1/{pack}/_reports/{name}`` runs them; a CSV download of
the same run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request  # noqa: TC002 - FastAPI reads the annotations
from starlette.responses import Response

from engine.errors import BadQuery
from runtime.api.reports import find_report, parameter_texts, report_csv, run_report
from runtime.plumbing import guard_for
from runtime.web.handling import screen
from runtime.web.screens.base import Family

if TYPE_CHECKING:
    from engine.reports import CompiledReport, ReportResult


class Reports(Family):
    routes = (
        ("GET", "/app/_reports/{pack}/{name}", "report"),
        ("GET", "/app/_reports/{pack}/{name}/csv", "download"),
    )

    @screen
    async def report(self, request: Request, pack: str, name: str) -> Response:
        """The form and, when its parameters are valid, the report; a bad parameter is
        shown above the form (400) with the values as typed, to be corrected."""
        session = await self.ui.session(request)
        model = self.live.current.model
        compiled = find_report(model, pack, name)
        actor = self.ui.actor(session)
        compiled.check_access(actor)
        pairs = _given(request)
        problem = None
        result: ReportResult | None = None
        opened = not request.query_params  # from the navigation, not sent from the form
        if not (opened and _needs_a_choice(compiled)):
            try:
                result = await run_report(model, self.database, compiled, actor, pairs)
            except BadQuery as exc:
                problem = exc.detail
        typed = dict(pairs)
        values = (
            parameter_texts(result.parameters)
            if result is not None
            else {p.name: typed.get(p.name, "") for p in compiled.definition.parameters}
        )
        async with self.database.get().connection() as conn:
            titles = await compiled.reference_titles(
                conn, values, lambda entity: guard_for(model.store_for(entity), actor, model)
            )
        return await self.render(
            request,
            "report.html",
            status=400 if problem else 200,
            session=session,
            title=compiled.definition.label,
            report=compiled.definition,
            values=values,
            titles=titles,
            problem=problem,
            sections=_sections(compiled, result),
            query=str(request.url.query),
        )

    @screen
    async def download(self, request: Request, pack: str, name: str) -> Response:
        session = await self.ui.session(request)
        model = self.live.current.model
        compiled = find_report(model, pack, name)
        actor = self.ui.actor(session)
        result = await run_report(model, self.database, compiled, actor, _given(request))
        return Response(
            report_csv(compiled, result),
            media_type="text/csv; charset=utf-8",
            headers={
                "content-disposition": f'attachment; filename="{name}.csv"',
                "cache-control": "no-store",
            },
        )


def _given(request: Request) -> list[tuple[str, str]]:
    """The form's parameters without the empty ones (a date cleared, a choice left at
    *Any*): those take their defaults, as a parameter left out of the API's query does."""
    return [(key, value) for key, value in request.query_params.multi_items() if value.strip()]


def _needs_a_choice(compiled: CompiledReport) -> bool:
    """Whether a parameter is required and has no default: the report opens on its form,
    for the user to choose, rather than on the error that it is missing."""
    return any(p.required and p.default is None for p in compiled.definition.parameters)


def _sections(compiled: CompiledReport, result: ReportResult | None) -> dict[str, Any] | None:
    """What the table shows: each section's lines and total, then the totals, each
    figure in the report's columns (empty where a total is not computed)."""
    if result is None:
        return None
    columns = [c.name for c in compiled.definition.columns]
    return {
        "sections": [
            {
                "label": s.label,
                "grouped": bool(s.lines) or _is_grouped(compiled, s.name),
                "lines": [(line.label, [line.values.get(c) for c in columns]) for line in s.lines],
                "total": [s.total.get(c) for c in columns],
                "truncated": s.truncated,
            }
            for s in result.sections
        ],
        "totals": [(t.label, [t.values.get(c) for c in columns]) for t in result.totals],
    }


def _is_grouped(compiled: CompiledReport, section: str) -> bool:
    return any(s.name == section and s.group_by for s in compiled.definition.sections)

"""Print formats: a record rendered by a Jinja2 template to HTML, and by WeasyPrint to PDF.

A pack's ``templates/`` folder holds its print formats, files named ``<name>.print.html``.
They are read and compiled once, when the definitions are (a template that does not parse
stops the load with ``file:line:col: message``), in the same bounded sandbox as the rules'
templates, with HTML autoescaping: a record's values can never become markup.

The template sees the record's fields as names (``number``, ``lines``, ``account.name``),
``record`` (the same mapping), ``entity`` (label and field labels), ``labels`` and the
instance's names (``company_name``...). An entity without a template of its own
(``<entity>.print.html``) prints with a generic layout: its fields, then its lines.

Values print as the reader reads them (docs/locales.md): the filters ``money``, ``number``,
``date`` and ``moment`` format in the locale and time zone of whoever prints (the user of
the request; the instance's defaults for an e-mail's attachment), and ``shown`` holds each
field of the record as text (``1.450,00 €`` for a money field, an enum by its label).

WeasyPrint (HTML and CSS to PDF, with Pango for text) is used because it lays out print CSS
(``@page``, page numbers, tables split across pages) better than the pure-Python libraries;
its fetcher here refuses every URL but ``data:``, so printing never reaches the network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from jinja2 import TemplateSyntaxError, pass_context

from engine.expressions import BoundedSandbox
from metadata import DefinitionError, DefinitionProblem, FieldType
from runtime.formatting import DEFAULT_LOCALE, Formats, formats_for

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from jinja2 import Template
    from jinja2.runtime import Context

    from engine.database import Database
    from engine.model import EngineModel
    from engine.outbox import OutboxEvent
    from metadata import EntityDef, ProjectDef

SUFFIX = ".print.html"
MAX_TEMPLATE_NAME = 200

GENERIC = """\
<!doctype html>
<html><head><meta charset="utf-8"><title>{{ entity.label }} {{ title }}</title>
<style>
@page { size: A4; margin: 18mm 16mm; }
body { font-family: sans-serif; font-size: 10pt; color: #222; }
h1 { font-size: 16pt; margin: 0 0 8mm; }
table { border-collapse: collapse; width: 100%; margin-bottom: 6mm; }
th, td { text-align: left; padding: 1.5mm 2mm; border-bottom: 0.3pt solid #bbb;
  vertical-align: top; }
th { color: #555; font-weight: normal; width: 35%; }
thead th { width: auto; border-bottom: 0.8pt solid #555; }
</style></head>
<body>
<h1>{{ entity.label }} {{ title }}</h1>
<table>
{% for name, label in entity.scalars %}
<tr><th>{{ label }}</th><td>{{ shown[name] }}</td></tr>
{% endfor %}
</table>
{% for name, label, columns in entity.children %}
<h2>{{ label }}</h2>
<table><thead><tr>
{% for column, heading in columns %}<th>{{ heading }}</th>{% endfor %}
</tr></thead>
<tbody>{% for line in shown_lines[name] %}<tr>
{% for column, heading in columns %}<td>{{ line[column] }}</td>{% endfor %}
</tr>{% endfor %}</tbody></table>
{% endfor %}
</body></html>
"""

_SYSTEM = frozenset({"id", "version", "created_at", "updated_at", "created_by", "updated_by"})


class UnknownTemplate(LookupError):
    """No print format of that name for the entity."""


class PrintFailed(ValueError):
    """The template raised while rendering (a missing name, a sandbox refusal...)."""


def _formats(context: Context) -> Formats:
    found = context.get("_formats")
    return found if isinstance(found, Formats) else formats_for(DEFAULT_LOCALE, "UTC")


@pass_context
def _money(context: Context, value: Any, currency: Any = None, scale: int = 2) -> str:
    """``{{ grand_total | money(currency) }}``: ``1.450,00 €`` or ``€1,450.00``; without a
    currency, the company's."""
    formats = _formats(context)
    code = currency if isinstance(currency, str) and currency else formats.company_currency
    return formats.money(value, code, scale)


@pass_context
def _number(context: Context, value: Any, scale: int | None = None) -> str:
    """``{{ quantity | number }}``: ``1.450,5`` (no trailing zeros), or ``number(2)``."""
    if scale is None and isinstance(value, (Decimal, str)):
        with localcontext(prec=120):  # every digit of a 38-digit decimal kept
            try:
                exact = Decimal(value).normalize()
            except InvalidOperation:
                return str(value)
            exponent = exact.as_tuple().exponent
            whole = isinstance(exponent, int) and exponent > 0
            value = exact.quantize(Decimal(1)) if whole else exact
    return _formats(context).number(value, scale)


@pass_context
def _date(context: Context, value: Any) -> str:
    return _formats(context).date(value)


@pass_context
def _moment(context: Context, value: Any) -> str:
    return _formats(context).datetime(value)


FILTERS = {"money": _money, "number": _number, "date": _date, "moment": _moment}
"""The print templates' filters of docs/locales.md, in the reader's locale and time zone."""


def _show(value: Any) -> Any:
    """A value as the generic layout shows it: a linked record by its title or name."""
    if isinstance(value, dict):
        for key in ("_title", "title", "name", "number", "code"):
            if value.get(key):
                return value[key]
        return value.get("id", "")
    return "" if value is None else value


@dataclass(frozen=True, slots=True)
class EntityLayout:
    """What a template knows of the entity: labels, and (generic layout) what to list."""

    label: str
    labels: Mapping[str, str]
    scalars: tuple[tuple[str, str], ...]
    children: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...]


class PrintFormats:
    """Every pack's print formats, compiled once per set of definitions."""

    def __init__(self, project: ProjectDef) -> None:
        self.project = project
        self.environment = BoundedSandbox()
        self.environment.autoescape = True
        self.environment.globals["show"] = _show
        self.environment.filters.update(FILTERS)
        self.generic = self.environment.from_string(GENERIC)
        self.templates: dict[str, dict[str, Template]] = {}
        """Per pack, per template name (``sales_invoice.print.html``)."""
        problems: list[DefinitionProblem] = []
        for module in project.modules.values():
            folder = module.path / "templates"
            if not folder.is_dir():
                continue
            compiled: dict[str, Template] = {}
            for path in sorted(folder.glob(f"*{SUFFIX}")):
                try:
                    source = path.read_text("utf-8")
                    compiled[path.name] = self.environment.from_string(source)
                except TemplateSyntaxError as exc:
                    column = _tag_column(exc.source or "", exc.lineno)
                    problems.append(
                        DefinitionProblem(str(path), exc.lineno, column, str(exc.message))
                    )
                except (OSError, UnicodeDecodeError) as exc:
                    problems.append(DefinitionProblem(str(path), 1, 1, str(exc)))
            self.templates[module.name] = compiled
        if problems:
            raise DefinitionError(problems)

    def names(self, entity: EntityDef) -> list[str]:
        """The print formats an entity's record may use: its pack's, then the others'."""
        found: list[str] = []
        for pack in (entity.pack, *self.templates):
            found.extend(n for n in self.templates.get(pack, {}) if n not in found)
        return found

    def template(self, entity: EntityDef, name: str | None) -> Template:
        """``name`` (a file name of a pack's templates/, never a path), or by default
        ``<entity>.print.html`` if a pack has it, else the generic layout."""
        if name is None or name == "":
            default = f"{entity.name}{SUFFIX}"
            return self._find(entity, default) or self.generic
        if len(name) > MAX_TEMPLATE_NAME:
            raise UnknownTemplate("the template name is too long")
        found = self._find(entity, name)
        if found is None:
            raise UnknownTemplate(f"no print format '{name}' for {entity.qualified_name}")
        return found

    def _find(self, entity: EntityDef, name: str) -> Template | None:
        for pack in (entity.pack, *self.templates):
            template = self.templates.get(pack, {}).get(name)
            if template is not None:
                return template
        return None

    def layout(self, entity: EntityDef) -> EntityLayout:
        labels = {name: f.label for name, f in entity.fields.items()}
        scalars: list[tuple[str, str]] = []
        children: list[tuple[str, str, tuple[tuple[str, str], ...]]] = []
        for name, f in entity.fields.items():
            if name in _SYSTEM:
                continue
            if f.entity is not None and f.type is FieldType.CHILDREN:
                child = self.project.entities.get(f.entity)
                columns = (
                    tuple(
                        (c, cf.label)
                        for c, cf in child.fields.items()
                        if c not in _SYSTEM and cf.type is not FieldType.CHILDREN
                    )
                    if child is not None
                    else ()
                )
                children.append((name, f.label, columns))
            else:
                scalars.append((name, f.label))
        return EntityLayout(entity.label, labels, tuple(scalars), tuple(children))

    def render_html(
        self,
        entity: EntityDef,
        template: Template,
        record: Mapping[str, Any],
        formats: Formats | None = None,
    ) -> str:
        """The record (fields the caller may not see already removed) through ``template``,
        its values shown as the reader of ``formats`` reads them (default: en_US, UTC)."""
        layout = self.layout(entity)
        visible = dict(record)
        reader = formats or formats_for(DEFAULT_LOCALE, "UTC")
        names: dict[str, Any] = {**self.project.instance_names, **visible}
        names["_formats"] = reader
        names["shown"] = self._shown(entity, visible, reader)
        names["shown_lines"] = {
            name: [
                self._shown(self.project.entities[f.entity or ""], line, reader, visible)
                for line in lines
            ]
            for name, f in entity.fields.items()
            if f.type is FieldType.CHILDREN
            and f.entity in self.project.entities
            and isinstance(lines := visible.get(name), list)
        }
        title_field = entity.title
        names.update(
            record=visible,
            entity=layout,
            labels=layout.labels,
            title=_show(visible.get(title_field)) if title_field else visible.get("id"),
        )
        layout_scalars = tuple((n, label) for n, label in layout.scalars if n in visible)
        names["entity"] = EntityLayout(layout.label, layout.labels, layout_scalars, layout.children)
        try:
            return template.render(names)
        except Exception as exc:  # the sandbox, a missing name, a bad filter argument...
            raise PrintFailed(f"the print format failed: {exc}") from exc

    @staticmethod
    def _shown(
        entity: EntityDef,
        record: Mapping[str, Any],
        formats: Formats,
        parent: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Each field of ``record`` (a line of ``parent``) as text people read (a linked
        record by its title; a line's amount in its document's currency)."""
        shown: dict[str, Any] = {}
        for name, value in record.items():
            field = entity.fields.get(name)
            if isinstance(value, dict) or field is None or field.type is FieldType.CHILDREN:
                shown[name] = _show(value) if not isinstance(value, list) else value
            else:
                shown[name] = formats.value(value, field, record, parent)
        return shown


def _tag_column(source: str, line: int) -> int:
    """Where the Jinja tag on ``line`` starts (1-based): Jinja names only the line of a
    syntax error; its tag is the likely place (the line's last ``{%``/``{{``), else 1."""
    lines = source.splitlines()
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    found = max(text.rfind("{%"), text.rfind("{{"))
    return found + 1 if found >= 0 else 1


def _no_fetch(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """WeasyPrint's URL fetcher: only inline ``data:`` URLs; nothing leaves the machine."""
    if url.startswith("data:"):
        from weasyprint.urls import default_url_fetcher

        result: dict[str, Any] = default_url_fetcher(url)
        return result
    raise ValueError(f"print formats load no external resources ({url[:60]})")


def html_to_pdf(html: str) -> bytes:
    """The PDF of ``html`` (blocking: call it in a worker thread)."""
    from weasyprint import HTML

    pdf = HTML(string=html, url_fetcher=_no_fetch).write_pdf()
    if pdf is None:  # pragma: no cover - only without a target it returns bytes
        raise PrintFailed("the PDF could not be written")
    return bytes(pdf)


class AttachmentPrinter:
    """Prints the PDFs an e-mail event attaches (``attach: {print: <name>}``), when the
    deliverer sends it: the event's record as it is then, with full rights (the rule, not a
    user, sends it), its lines and references expanded."""

    def __init__(self, database: Database, models: Callable[[], EngineModel]) -> None:
        self.database = database
        self.models = models
        self._formats: tuple[EngineModel, PrintFormats] | None = None

    def formats(self, model: EngineModel) -> PrintFormats:
        if self._formats is None or self._formats[0] is not model:
            self._formats = (model, PrintFormats(model.project))
        return self._formats[1]

    async def __call__(self, event: OutboxEvent) -> list[tuple[str, bytes]]:
        names = [str(item["print"]) for item in event.payload.get("attach") or ()]
        if not names:
            return []
        model = self.models()
        store = model.store_for(event.entity)
        formats = self.formats(model)
        async with self.database.connection() as conn:
            record = await store.get(conn, int(event.record_id))
            for name, field in store.entity.fields.items():
                if field.type is not FieldType.REFERENCE or field.to is None:
                    continue
                if record.get(name) is None:
                    continue
                found = await model.store_for(field.to).get_many(conn, [int(record[name])])
                record[name] = found.get(str(record[name]), record[name])
        files = []
        for name in names:
            html = formats.render_html(store.entity, formats.template(store.entity, name), record)
            pdf = await anyio.to_thread.run_sync(html_to_pdf, html)
            number = record.get(store.entity.title or "id") or record.get("id")
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(number))[:80]
            files.append((f"{store.entity.name}-{safe}.pdf", pdf))
        return files

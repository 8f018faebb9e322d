"""Record forms (SPEC §6 ``forms/``): ``forms/<entity>.yaml`` in a pack lays an entity's
fields out in sections; a customization's ``form:`` changes that layout by section name.

Sections are addressed by name so that a customization keeps applying when the pack
upgrades its form: it relabels a pack section, puts fields into it (moving them from where
they were), appends sections of its own and hides fields. A field the customization adds
and places nowhere goes at the end of the last section, so a new field is never invisible.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from metadata._errors import did_you_mean
from metadata._expressions import SCOPE_NAMES, expression_problems
from metadata._model import SYSTEM_FIELDS, FormDef, FormField, FormSection

if TYPE_CHECKING:
    from metadata._errors import PathItem, ProblemCollector
    from metadata._model import EntityDef, FieldDef
    from metadata._yaml import SourceDocument


def default_form(entity: EntityDef) -> FormDef:
    """One section with every field, in declaration order."""
    fields = tuple(FormField(name) for name in entity.fields)
    return FormDef((FormSection("main", entity.label, 1, None, fields),))


class FormChecker:
    """Builds and customizes one entity's form, reporting at the keys of its files."""

    def __init__(self, entity: EntityDef, problems: ProblemCollector) -> None:
        self.entity = entity
        self.problems = problems
        failed = problems.failed_fields.get(entity.qualified_name, set())
        self.scope = {*entity.fields, *SYSTEM_FIELDS, *SCOPE_NAMES, *failed}

    def pack_form(self, document: SourceDocument | None) -> FormDef:
        if document is None:
            return default_form(self.entity)
        placed: set[str] = set()
        sections = []
        names: set[str] = set()
        for index, raw in enumerate(document.data["sections"]):
            if raw is None:  # broke the schema: reported, left out
                continue
            where: tuple[PathItem, ...] = ("sections", index)
            if raw["name"] in names:
                self._error(document, (*where, "name"), f"section '{raw['name']}' is listed twice")
            names.add(raw["name"])
            fields = self._fields(document, where, raw.get("fields", []), placed)
            sections.append(self._section(document, where, raw, fields))
        form = FormDef(tuple(sections))
        if None not in document.data["sections"]:  # else a missing field may be in that one
            self._check_required_present(document, (), form)
        return form

    def customize(self, form: FormDef, document: SourceDocument, data: dict[str, Any]) -> FormDef:
        """``form`` (the pack's) changed by a customization's ``form:`` mapping."""
        sections = {s.name: s for s in form.sections}
        placed: set[str] = set()
        for index, raw in enumerate(data.get("sections", [])):
            where: tuple[PathItem, ...] = ("form", "sections", index)
            fields = self._fields(document, where, raw.get("fields", []), placed)
            names = {f.field for f in fields}
            sections = {
                name: replace(s, fields=tuple(f for f in s.fields if f.field not in names))
                for name, s in sections.items()
            }
            current = sections.get(raw["name"])
            if current is None:
                sections[raw["name"]] = self._section(document, where, raw, fields)
            else:
                changed = self._section(document, where, {**_section_keys(current), **raw}, ())
                sections[raw["name"]] = replace(changed, fields=(*current.fields, *fields))
        hidden = set()
        for index, name in enumerate(data.get("hide", [])):
            where = ("form", "hide", index)
            if not self._known(document, where, name):
                continue
            if _needed_on_form(self.entity.fields[name]):
                self._error(
                    document,
                    where,
                    f"required field '{name}' cannot be hidden: "
                    "records could not be created from the form",
                )
            hidden.add(name)
        customized = FormDef(
            tuple(
                replace(s, fields=tuple(f for f in s.fields if f.field not in hidden))
                for s in sections.values()
            )
        )
        return self._with_unplaced(customized, document.display_name, hidden)

    def _with_unplaced(self, form: FormDef, origin: str, hidden: set[str]) -> FormDef:
        """Fields the customization adds and places nowhere go at the end of the last
        section."""
        on_form = set(form.field_names())
        unplaced = tuple(
            FormField(f.name)
            for f in self.entity.fields.values()
            if f.origin == origin and f.name not in on_form and f.name not in hidden
        )
        if not unplaced or not form.sections:
            return form
        *head, last = form.sections
        return FormDef((*head, replace(last, fields=(*last.fields, *unplaced))))

    # -- pieces --------------------------------------------------------------------------

    def _error(self, document: SourceDocument, where: tuple[PathItem, ...], message: str) -> None:
        self.problems.at(document, where, message)

    def _known(self, document: SourceDocument, where: tuple[PathItem, ...], name: str) -> bool:
        if name in self.entity.fields:
            return True
        hint = did_you_mean(name, self.entity.fields)
        self.problems.unknown(
            document,
            where,
            f"'{name}' is not a field of {self.entity.qualified_name}{hint}",
            entity=self.entity.qualified_name,
            field_name=name,
        )
        return False

    def _expression(
        self, document: SourceDocument, where: tuple[PathItem, ...], source: str
    ) -> None:
        for problem in expression_problems(source, self.scope):
            self._error(document, where, problem)

    def _fields(
        self,
        document: SourceDocument,
        where: tuple[PathItem, ...],
        entries: list[Any],
        placed: set[str],
    ) -> tuple[FormField, ...]:
        fields: list[FormField] = []
        for index, entry in enumerate(entries):
            raw = {"field": entry} if isinstance(entry, str) else entry
            at = (*where, "fields", index)
            name = raw["field"]
            if not self._known(document, at if isinstance(entry, str) else (*at, "field"), name):
                continue
            if name in placed or name in (f.field for f in fields):
                self._error(document, at, f"field '{name}' is on the form twice")
                continue
            placed.add(name)
            if "visible_if" in raw:
                self._expression(document, (*at, "visible_if"), raw["visible_if"])
            fields.append(
                FormField(
                    name,
                    raw.get("label"),
                    raw.get("help"),
                    raw.get("visible_if"),
                    bool(raw.get("read_only", False)),
                )
            )
        return tuple(fields)

    def _section(
        self,
        document: SourceDocument,
        where: tuple[PathItem, ...],
        raw: dict[str, Any],
        fields: tuple[FormField, ...],
    ) -> FormSection:
        if raw.get("visible_if"):
            self._expression(document, (*where, "visible_if"), raw["visible_if"])
        return FormSection(
            raw["name"], raw.get("label"), raw.get("columns", 1), raw.get("visible_if"), fields
        )

    def _check_required_present(
        self, document: SourceDocument, where: tuple[PathItem, ...], form: FormDef
    ) -> None:
        """A required field without a default must be on the form, or no record could be
        created from it."""
        on_form = set(form.field_names())
        for field_def in self.entity.fields.values():
            if _needed_on_form(field_def) and field_def.name not in on_form:
                self._error(
                    document,
                    where,
                    f"required field '{field_def.name}' is not on the form: "
                    "records could not be created from it",
                )


def _needed_on_form(field_def: FieldDef) -> bool:
    return field_def.required and field_def.default is None and field_def.is_writable


def _section_keys(section: FormSection) -> dict[str, Any]:
    return {
        "name": section.name,
        "label": section.label,
        "columns": section.columns,
        "visible_if": section.visible_if,
    }

"""Second pass over one field definition: normalise it into a ``FieldDef`` and check it.

Used for the fields a pack declares and for the fields a customization adds; the checker
reports every problem at the file and key where it was written.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from metadata._autonumbers import (
    AUTONUMBER_MAX_LENGTH,
    AUTONUMBER_TOKEN,
    DATE_TOKEN_WIDTHS,
)
from metadata._expressions import expression_syntax_error, is_template, template_syntax_error
from metadata._fieldkeys import TYPE_KEYS, TYPE_TRAITS
from metadata._files import SIZE_HINT, content_type_problem, parse_size
from metadata._lookups import read_lookup
from metadata._model import (
    RESERVED_PARAMETERS,
    SYSTEM_FIELDS,
    FieldDef,
    FieldType,
    NumberAssign,
    OnDelete,
)
from metadata._names import default_label, is_snake_case

if TYPE_CHECKING:
    from collections.abc import Iterable

    from metadata._building import Builder, PackSource
    from metadata._errors import PathItem
    from metadata._yaml import SourceDocument


def pattern_problem(pattern: str) -> str | None:
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"pattern is not a valid regular expression: {exc}"
    return None


def default_problem(field_type: FieldType, value: Any, values: Iterable[str]) -> str | None:
    """Why ``value`` cannot be the default of a field of this type (enum: with ``values``)."""
    if value is None:
        return None
    traits = TYPE_TRAITS[field_type]
    if not traits.literal_default:
        return f"a {field_type} field cannot have a default"
    return traits.default_problem(value, values) if traits.default_problem else None


class FieldChecker:
    """Normalises and checks one field definition.

    ``customization`` marks a field added by a customization file: it may reference the
    entities of every enabled pack, and it cannot be a ``children`` field (line-item entities
    belong to packs).
    """

    def __init__(
        self,
        builder: Builder,
        pack: PackSource,
        document: SourceDocument,
        name: str,
        raw: dict[str, Any],
        *,
        customization: bool = False,
    ) -> None:
        self.builder = builder
        self.pack = pack
        self.document = document
        self.name = name
        self.raw = raw
        self.customization = customization
        self.path: tuple[PathItem, ...] = ("fields", name)
        self.ok = True

    def error(self, message: str, key: str | None = None, *, at_key: bool = False) -> None:
        where = (*self.path, key) if key else self.path
        self.builder.problems.at(self.document, where, message, key=at_key or key is None)
        self.ok = False

    def build(self) -> FieldDef | None:
        self._check_name()
        field_type = FieldType(self.raw["type"])
        if self.customization and field_type is FieldType.CHILDREN:
            self.error(
                "a customization cannot add a children field; line-item entities belong to packs",
                "type",
            )
            return None
        for key in self.raw:
            if key not in TYPE_KEYS[field_type]:
                self.error(
                    f"key '{key}' does not apply to a field of type {field_type}", key, at_key=True
                )
        for key in ("required_if", "computed"):
            if key in self.raw:
                message = expression_syntax_error(self.raw[key])
                if message:
                    self.error(message, key)
        built = FieldDef(
            name=self.name,
            type=field_type,
            label=self.raw.get("label") or default_label(self.name),
            help=self.raw.get("help"),
            required=bool(self.raw.get("required", False)),
            required_if=self.raw.get("required_if"),
            unique=bool(self.raw.get("unique", False)),
            index=bool(self.raw.get("index", False)),
            default=self._default(field_type),
            min=self._number("min"),
            max=self._number("max"),
            min_length=self.raw.get("min_length"),
            max_length=self.raw.get("max_length"),
            pattern=self._pattern(),
            values=tuple(self.raw.get("values", ())),
            to=self._target("to") if field_type is FieldType.REFERENCE else None,
            on_delete=self._on_delete(field_type),
            entity=self._children() if field_type is FieldType.CHILDREN else None,
            computed=self.raw.get("computed"),
            read_only=bool(self.raw.get("read_only", False)),
            allow_on_submit=bool(self.raw.get("allow_on_submit", False)),
            precision=self._precision(field_type),
            scale=self._scale(field_type),
            currency=self.raw.get("currency"),
            format=self._format(),
            assign=NumberAssign(self.raw.get("assign", NumberAssign.INSERT)),
            date_field=self.raw.get("date_field"),
            gapless=self.raw.get("gapless") is not False,
            renamed_from=self._renamed_from(),
            accept=self._accept(),
            max_size=self._max_size(),
            lookup=read_lookup(self) if "lookup" in self.raw else None,
            origin=self.document.display_name,
        )
        self._check_ranges(built)
        return built if self.ok else None

    def _accept(self) -> tuple[str, ...] | None:
        """A file field's ``accept``: content types and ``type/*`` patterns."""
        patterns = self.raw.get("accept")
        if patterns is None:
            return None
        for pattern in patterns:
            problem = content_type_problem(pattern)
            if problem is not None:
                self.error(problem, "accept")
        return tuple(patterns)

    def _max_size(self) -> int | None:
        """A file field's ``max_size`` in bytes (``10MB``, ``512kB`` or a number)."""
        raw = self.raw.get("max_size")
        if raw is None:
            return None
        size = parse_size(raw)
        if size is None:
            self.error(f"max_size must be {SIZE_HINT}, not '{raw}'", "max_size")
        return size

    def _check_name(self) -> None:
        if not is_snake_case(self.name):
            self.error(f"field name '{self.name}' must be snake_case (a-z, 0-9, single _)")
        elif self.name in SYSTEM_FIELDS:
            self.error(f"'{self.name}' is a system field every record has; choose another name")
        elif self.name in RESERVED_PARAMETERS:
            self.error(f"'{self.name}' is reserved as a list parameter; choose another name")

    def _number(self, key: str) -> Decimal | None:
        value = self.raw.get(key)
        if value is None:
            return None
        try:
            return Decimal(str(value))
        except InvalidOperation:
            self.error(f"{key} must be a number, not '{value}'", key)
            return None

    def _pattern(self) -> str | None:
        pattern = self.raw.get("pattern")
        if pattern is not None and (problem := pattern_problem(pattern)):
            self.error(problem, "pattern")
        return pattern

    def _target(self, key: str) -> str | None:
        return self.builder.resolve_entity(
            self.pack,
            self.raw[key],
            self.document,
            (*self.path, key),
            any_pack=self.customization,
        )

    def _on_delete(self, field_type: FieldType) -> OnDelete | None:
        if field_type is not FieldType.REFERENCE:
            return None
        on_delete = OnDelete(self.raw.get("on_delete", "restrict"))
        if on_delete is OnDelete.SET_NULL and self.raw.get("required"):
            self.error("on_delete: set_null cannot apply to a required reference", "on_delete")
        return on_delete

    def _children(self) -> str | None:
        target = self.raw["entity"]
        qualified = self._target("entity")
        if qualified is None:
            return None
        owner = f"{self.pack.name}.{self.document.path.stem}"
        if qualified.split(".", 1)[0] != self.pack.name:
            self.error(
                f"children entity '{target}' must belong to pack '{self.pack.name}'", "entity"
            )
        elif qualified == owner:
            self.error("an entity cannot be its own children entity", "entity")
        elif qualified in self.builder.child_owner:
            self.error(
                f"entity '{target}' is already the children entity of "
                f"'{self.builder.child_owner[qualified]}'",
                "entity",
            )
        else:
            child_document = self.pack.entity_documents.get(qualified.split(".", 1)[1])
            if child_document and any(
                f.get("type") == "children" for f in child_document.data["fields"].values()
            ):
                self.error(
                    f"children entity '{target}' has children of its own; "
                    "only one level of line items is supported",
                    "entity",
                )
            self.builder.child_owner[qualified] = owner
        return qualified

    def _precision(self, field_type: FieldType) -> int | None:
        if field_type is not FieldType.DECIMAL:
            return None
        return int(self.raw.get("precision", 18))

    def _scale(self, field_type: FieldType) -> int | None:
        if field_type is not FieldType.DECIMAL:
            return None
        scale = int(self.raw.get("scale", 2))
        if scale > int(self.raw.get("precision", 18)):
            self.error("scale cannot exceed precision", "scale")
        return scale

    def _format(self) -> str | None:
        fmt: str | None = self.raw.get("format")
        if fmt is None:
            return None
        tokens = AUTONUMBER_TOKEN.findall(fmt)
        if not any(token.startswith("#") for token in tokens):
            self.error("autonumber format needs a counter such as {#####}", "format")
        # the shortest number it can make: every field token at least one character
        shortest = len(AUTONUMBER_TOKEN.sub("", fmt)) + sum(
            DATE_TOKEN_WIDTHS.get(token, len(token) if token[0] == "#" else 1) for token in tokens
        )
        if shortest > AUTONUMBER_MAX_LENGTH:
            self.error(
                f"autonumber format makes numbers of at least {shortest} characters; "
                f"an autonumber holds at most {AUTONUMBER_MAX_LENGTH}",
                "format",
            )
        return fmt

    def _renamed_from(self) -> str | None:
        old: str | None = self.raw.get("renamed_from")
        if old is None:
            return None
        if not is_snake_case(old):
            self.error(
                f"renamed_from '{old}' must be a snake_case field name (a-z, 0-9, single _)",
                "renamed_from",
            )
        elif old in SYSTEM_FIELDS or old in RESERVED_PARAMETERS:
            self.error(
                f"renamed_from '{old}' is a system or reserved name, which no field can have had",
                "renamed_from",
            )
        return old

    def _default(self, field_type: FieldType) -> Any:
        if "default" not in self.raw:
            return None
        value = self.raw["default"]
        if is_template(value):
            problem = template_syntax_error(value)
            if "default" not in TYPE_KEYS[field_type]:
                problem = f"a {field_type} field cannot have a default"
            if problem:
                self.error(problem, "default")
            return value
        problem = default_problem(field_type, value, self.raw.get("values", ()))
        if problem:
            self.error(problem, "default")
        return value

    def _check_ranges(self, built: FieldDef) -> None:
        if built.min is not None and built.max is not None and built.min > built.max:
            self.error("min is greater than max", "min")
        if (
            built.min_length is not None
            and built.max_length is not None
            and built.min_length > built.max_length
        ):
            self.error("min_length is greater than max_length", "min_length")
        if built.computed and built.required:
            self.error("a computed field cannot be required", "required")

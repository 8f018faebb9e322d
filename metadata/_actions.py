"""Rule actions (SPEC §3.3): one typed, immutable definition per kind, registered by kind.

A kind is a frozen dataclass subclassing ``ActionDef`` and decorated ``@action_kind``: its
``kind`` (the key in ``actions:``), its ``schema`` (the JSON Schema of the body under that
key, which the rules and overlay schemas take their list of actions from) and its
``parse`` (the load-time checks, reported at their keys). The engine runs each kind with
the handler registered for it in ``engine.effects``. The built-in kinds are below:
``create`` and ``update`` (in the write's transaction, or after it with ``async: true``),
``email`` and ``webhook`` (through the outbox, after commit).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from metadata._expressions import is_template
from metadata._model import ActionDef, frozen_mapping

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from metadata._errors import PathItem
    from metadata._model import ActionChecker

_ACTIONS: dict[str, type[ActionDef]] = {}
_LISTENERS: list[Callable[[], None]] = []

A = TypeVar("A", bound="type[ActionDef]")


def action_kind(cls: A) -> A:
    """Register an action kind (a class decorator); a kind registered again replaces the
    previous definition."""
    _ACTIONS[cls.kind] = cls
    for listener in _LISTENERS:
        listener()
    return cls


def action_definition(kind: str) -> type[ActionDef]:
    return _ACTIONS[kind]


def action_kinds() -> tuple[str, ...]:
    """The registered kinds, in registration order (the built-in ones first)."""
    return tuple(_ACTIONS)


def on_new_kind(listener: Callable[[], None]) -> None:
    """Call ``listener`` whenever a kind is registered (the schemas compiled from the
    kinds are then compiled again)."""
    _LISTENERS.append(listener)


def action_schemas() -> dict[str, Mapping[str, Any]]:
    """Each registered kind's body schema, by kind: the properties of one action."""
    return {kind: definition.schema for kind, definition in _ACTIONS.items()}


def _strings(values: Mapping[str, Any]) -> Iterator[str]:
    for value in values.values():
        if isinstance(value, Mapping):
            yield from _strings(value)
        elif isinstance(value, str) and "{{" in value:
            yield value


_VALUES_SCHEMA = {
    "type": "object",
    "description": "Field values: literals, or templates when they contain {{ }}.",
}


@dataclass(frozen=True, slots=True)
class LineMap:
    """``lines:`` of a ``create``: one line of the target's ``target`` children field per
    line of the source's ``source`` children field, its ``values`` templates over the
    record written with the source line in scope as ``line`` (like ERPNext's
    ``get_mapped_doc``)."""

    source: str
    target: str
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordAction(ActionDef):
    """An action that writes a record: field ``values`` (literals or templates) of
    ``entity`` (None: the record written). Its target and fields are checked once every
    entity is built; ``deferred`` (``async: true``) runs it after the commit. An update may
    name the record it writes with ``id`` (a template); a create may fill the new record's
    line items from the record's with ``lines``."""

    creates: ClassVar[bool] = False
    """Whether it creates the record (so it must set the target's required fields)."""
    values: Mapping[str, Any]
    entity: str | None = None
    deferred: bool = False
    id: str | None = None
    """The id of the record an update writes (a template); None: the record written."""
    where: Mapping[str, Any] | None = None
    """An update of the records of ``entity`` whose fields equal these values (literals or
    templates over the record written), instead of one ``id``."""
    lines: LineMap | None = None
    match: Mapping[str, Any] | None = None
    """A create's ``match``: field values (literals or templates) of the target; the first
    record (by id) whose fields equal them is used instead of creating one."""
    set: str | None = None
    """A create's ``set``: the reference field of the record written that receives the id of
    the record created (or matched); the rule's later actions see it."""

    @property
    def reads_back(self) -> bool:
        """Whether the action needs the record it creates or finds (``match``, ``set``), so
        that it cannot be folded into the triggering statement."""
        return self.match is not None or self.set is not None

    @classmethod
    def parse(
        cls, body: Any, checker: ActionChecker, where: tuple[PathItem, ...], *, deferred: bool
    ) -> ActionDef | None:
        ok = checker.templates_ok((*where, "values"), body["values"])
        target = body.get("entity")
        if target is not None and "." not in target:
            target = f"{checker.pack}.{target}"
        ident = str(body["id"]) if "id" in body else None
        selector = body.get("where")
        if ident is not None:
            ok = checker.templates_ok(where, {"id": ident}) and ok
        if selector is not None:
            ok = checker.templates_ok((*where, "where"), selector) and ok
            if ident is not None:
                checker.error((*where, "where"), "give 'id' or 'where', not both", key=True)
                ok = False
        elif ident is None and target is not None and not cls.creates:
            checker.error(
                where,
                "an update of another entity needs 'id' (a template naming the record, "
                "e.g. id: \"{{ order }}\") or 'where' (field values selecting the records)",
            )
            ok = False
        lines = None
        raw_lines = body.get("lines")
        if raw_lines is not None:
            values = raw_lines["map"]
            ok = checker.templates_ok((*where, "lines", "map"), values, line=True) and ok
            source = raw_lines["from"]
            lines = LineMap(source, raw_lines.get("to", source), frozen_mapping(dict(values)))
        match = body.get("match")
        if match is not None:
            ok = checker.templates_ok((*where, "match"), match) and ok
        sets = body.get("set")
        if deferred and (match is not None or sets is not None):
            key = "match" if match is not None else "set"
            checker.error(
                (*where, key),
                f"'{key}' needs the record in the write's transaction: drop 'async'",
                key=True,
            )
            ok = False
        elif deferred and (ident is not None or selector is not None or lines is not None):
            what = "'lines'" if lines is not None else "another record"
            checker.error(
                where, f"an action with {what} runs in the write's transaction: drop 'async'"
            )
            ok = False
        if not ok:
            return None
        action = cls(
            values=frozen_mapping(dict(body["values"])),
            entity=target,
            deferred=deferred,
            id=ident,
            where=frozen_mapping(dict(selector)) if selector is not None else None,
            lines=lines,
            match=frozen_mapping(dict(match)) if match is not None else None,
            set=sets,
        )
        checker.target_later(where[:-1], action)
        return action

    def templates(self) -> Iterator[str]:
        yield from _strings(self.values)
        if self.id is not None and is_template(self.id):
            yield self.id
        if self.where is not None:
            yield from _strings(self.where)
        if self.lines is not None:
            yield from _strings(self.lines.values)
        if self.match is not None:
            yield from _strings(self.match)

    def describe(self) -> dict[str, Any]:
        body: dict[str, Any] = {"values": dict(self.values)}
        if self.entity:
            body = {"entity": self.entity, **body}
        if self.id is not None:
            body["id"] = self.id
        if self.where is not None:
            body["where"] = dict(self.where)
        if self.lines is not None:
            body["lines"] = {
                "from": self.lines.source,
                "to": self.lines.target,
                "map": dict(self.lines.values),
            }
        if self.match is not None:
            body["match"] = dict(self.match)
        if self.set is not None:
            body["set"] = self.set
        return {self.kind: body}


_LINES_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["from", "map"],
    "description": "Fill the new record's line items from the record's: one line per line "
    "of 'from', the source line in scope as 'line' in the 'map' templates.",
    "properties": {
        "from": {
            "type": "string",
            "description": "The children field of the record written whose lines are mapped.",
        },
        "to": {
            "type": "string",
            "description": "The children field of the new record to fill (default: 'from').",
        },
        "map": {
            "type": "object",
            "description": "Fields of each new line: literals, or templates over the record "
            "and 'line' (the source line).",
        },
    },
}


@action_kind
@dataclass(frozen=True, slots=True, kw_only=True)
class CreateAction(RecordAction):
    """Create a record of ``entity`` (in the write's transaction, or after it)."""

    kind: ClassVar[str] = "create"
    creates: ClassVar[bool] = True
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["entity", "values"],
        "properties": {
            "entity": {
                "type": "string",
                "description": "pack.entity (or entity of this pack) to create a record of.",
            },
            "values": _VALUES_SCHEMA,
            "lines": _LINES_SCHEMA,
            "match": {
                "type": "object",
                "minProperties": 1,
                "description": "Find or create: when a record of 'entity' has these field "
                "values (literals, or templates over the record written), e.g. "
                "{name: '{{ company }}'}, the first one (by id) is used and none is created.",
            },
            "set": {
                "type": "string",
                "description": "A reference field of the record written that receives the id "
                "of the record created (or matched), read-only ones included; the rule's "
                "later actions see it.",
            },
        },
    }


@action_kind
@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateAction(RecordAction):
    """Update the record written, or the record of ``entity`` that ``id`` names (in the
    write's transaction, or after it)."""

    kind: ClassVar[str] = "update"
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["values"],
        "properties": {
            "entity": {
                "type": "string",
                "description": "pack.entity (or entity of this pack) of the record to update "
                "(default: the record written's); needs 'id'.",
            },
            "id": {
                "type": ["string", "integer"],
                "description": "The id of the record to update: a template such as "
                "'{{ order }}' (default: the record written).",
            },
            "where": {
                "type": "object",
                "minProperties": 1,
                "description": "Update every record of 'entity' whose fields equal these "
                "values (literals, or templates over the record written), e.g. "
                "{order: '{{ id }}'}; instead of 'id'.",
            },
            "values": {
                "type": "object",
                "description": "Field values of this record: literals, or templates when "
                "they contain {{ }}.",
            },
        },
    }


_EMAIL_PARTS = ("to", "cc", "subject", "body")


@action_kind
@dataclass(frozen=True, slots=True, kw_only=True)
class EmailAction(ActionDef):
    """Send an e-mail (through the outbox, after commit): ``to``, ``cc``, ``subject`` and
    ``body`` are literals or templates; ``template`` a file of the pack's ``templates/``."""

    kind: ClassVar[str] = "email"
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["to"],
        "description": "Send an e-mail over SMTP after the write commits (through the outbox, "
        "at least once). Rendered when the write happens.",
        "properties": {
            "to": {
                "type": "string",
                "description": "Recipient address(es), comma-separated; a template when it "
                "contains {{ }}.",
            },
            "cc": {
                "type": "string",
                "description": "Copy recipients, comma-separated; may be a template.",
            },
            "subject": {
                "type": "string",
                "description": "Subject line; may be a template. A template file may instead "
                "start with a 'Subject:' line.",
            },
            "body": {
                "type": "string",
                "description": "Plain-text body; may be a template. Needed when there is no "
                "'template'.",
            },
            "template": {
                "type": "string",
                "description": "A Jinja2 template file in the pack's templates/ folder, "
                "rendered over the record.",
            },
            "attach": {
                "type": "object",
                "additionalProperties": False,
                "required": ["print"],
                "description": "Attach the record printed as a PDF (docs/print.md).",
                "properties": {
                    "print": {
                        "type": "string",
                        "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.-]*\\.print\\.html$",
                        "description": "A print format of the pack's templates/ folder, "
                        "e.g. sales_invoice.print.html.",
                    }
                },
            },
        },
    }
    to: str
    cc: str | None = None
    subject: str | None = None
    body: str | None = None
    template: str | None = None
    """An e-mail's template file, relative to the pack's ``templates/`` folder."""
    template_source: str | None = None
    """That file's text, read at load time so that a running server needs no pack files."""
    attach_print: str | None = None
    """``attach: {print: <name>}``: the record printed with that print format, attached as
    a PDF when the e-mail is sent."""

    @property
    def parts(self) -> dict[str, str]:
        """``to``, ``cc``, ``subject`` and ``body``, those the action sets."""
        values = {name: getattr(self, name) for name in _EMAIL_PARTS}
        return {name: value for name, value in values.items() if value is not None}

    @classmethod
    def parse(
        cls, body: Any, checker: ActionChecker, where: tuple[PathItem, ...], *, deferred: bool
    ) -> ActionDef | None:
        parts = {k: body[k] for k in _EMAIL_PARTS if k in body}
        ok = checker.templates_ok(where, parts)
        template = body.get("template")
        source = None
        if template is None and "body" not in body:
            checker.error(where, "an email needs a 'template' or a 'body'")
            ok = False
        if template is not None:
            source = checker.template_source((*where, "template"), template)
            ok = ok and source is not None
        attach = body.get("attach", {}).get("print")
        if attach is not None:
            ok = checker.print_template((*where, "attach", "print"), attach) and ok
        if not ok:
            return None
        return cls(**parts, template=template, template_source=source, attach_print=attach)

    def templates(self) -> Iterator[str]:
        yield from _strings(self.parts)
        if self.template_source:
            yield self.template_source

    def describe(self) -> dict[str, Any]:
        return {self.kind: {"values": self.parts}}


@action_kind
@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookAction(ActionDef):
    """POST a signed JSON event to ``url`` (through the outbox, after commit): ``payload``
    (literals or templates) as its ``data``, or the record as written."""

    kind: ClassVar[str] = "webhook"
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["url"],
        "description": "POST a JSON event, signed with HMAC-SHA256, after the write commits "
        "(through the outbox, at least once).",
        "properties": {
            "url": {
                "type": "string",
                "description": "http:// or https:// URL; may be a template.",
            },
            "payload": {
                "type": "object",
                "description": "Extra JSON fields sent as the event's 'data': literals or "
                "templates. Default: the record.",
            },
        },
    }
    url: str
    payload: Mapping[str, Any] | None = None

    @classmethod
    def parse(
        cls, body: Any, checker: ActionChecker, where: tuple[PathItem, ...], *, deferred: bool
    ) -> ActionDef | None:
        url = body["url"]
        ok = checker.templates_ok(where, {"url": url, "payload": body.get("payload", {})})
        if not is_template(url) and not url.startswith(("http://", "https://")):
            checker.error((*where, "url"), f"'{url}' is not an http:// or https:// URL")
            ok = False
        if not ok:
            return None
        payload = body.get("payload")
        return cls(url=url, payload=frozen_mapping(payload) if payload is not None else None)

    @property
    def parts(self) -> dict[str, Any]:
        values: dict[str, Any] = {"url": self.url}
        if self.payload is not None:
            values["payload"] = self.payload
        return values

    def templates(self) -> Iterator[str]:
        return _strings(self.parts)

    def describe(self) -> dict[str, Any]:
        values: dict[str, Any] = {"url": self.url}
        if self.payload is not None:
            values["payload"] = dict(self.payload)
        return {self.kind: {"values": values}}

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


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordAction(ActionDef):
    """An action that writes a record: field ``values`` (literals or templates) of
    ``entity`` (None: the record written). Its target and fields are checked once every
    entity is built; ``deferred`` (``async: true``) runs it after the commit."""

    creates: ClassVar[bool] = False
    """Whether it creates the record (so it must set the target's required fields)."""
    values: Mapping[str, Any]
    entity: str | None = None
    deferred: bool = False

    @classmethod
    def parse(
        cls, body: Any, checker: ActionChecker, where: tuple[PathItem, ...], *, deferred: bool
    ) -> ActionDef | None:
        if not checker.templates_ok((*where, "values"), body["values"]):
            return None
        target = body.get("entity")
        if target is not None and "." not in target:
            target = f"{checker.pack}.{target}"
        action = cls(values=frozen_mapping(dict(body["values"])), entity=target, deferred=deferred)
        checker.target_later(where[:-1], action)
        return action

    def templates(self) -> Iterator[str]:
        return _strings(self.values)

    def describe(self) -> dict[str, Any]:
        if self.entity:
            return {self.kind: {"entity": self.entity, "values": dict(self.values)}}
        return {self.kind: {"values": dict(self.values)}}


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
        },
    }


@action_kind
@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateAction(RecordAction):
    """Update the record written (in the write's transaction, or after it)."""

    kind: ClassVar[str] = "update"
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["values"],
        "properties": {
            "values": {
                "type": "object",
                "description": "Field values of this record: literals, or templates when "
                "they contain {{ }}.",
            }
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
        if not ok:
            return None
        return cls(**parts, template=template, template_source=source)

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

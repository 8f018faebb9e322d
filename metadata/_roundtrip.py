"""Round-trip editing of YAML files: change one part of a file and leave every other part
exactly as its author wrote it (comments, blank lines, key order, quoting, alignment, flow
or block style, indentation). ``metadata.overlay_editor`` builds the edits of customization
files on it.

ruamel.yaml's round-trip *dump* keeps comments and order but re-emits the whole document:
alignment after ``name:``, spaces inside ``{ }``, long and multi-line flow collections and
sequence indentation change, and a comment next to an added or removed key moves with the
wrong key. So ruamel.yaml (``typ="rt"``) is used to parse the file into nodes with exact
positions and to render the new values, and only the changed text is spliced into the file:
a value is replaced where it stands, a key is inserted after the last entry (before the
comments that introduce whatever follows) and removed together with the comment lines
directly above it.

Every edit is checked before it is written: the new text is parsed again and must hold
exactly the intended data. When it would not (the entry is a YAML alias, say), the file is
left untouched and ``OverlayEditError`` says to edit the file by hand.

Several server processes may edit one file, so the read-modify-write runs under an exclusive
``flock`` on ``.<file name>.lock`` beside the file, and the new bytes replace the old ones
atomically (temporary file in the same folder, fsync, ``os.replace``). The loader skips
files whose names start with a dot, so neither the lock nor a leftover temporary file is
mistaken for a customization.
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import io
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import CollectionNode, MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.scalarbool import ScalarBoolean

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

_DEFAULT_INDENT = 2
_STR_TAG = "tag:yaml.org,2002:str"
BY_HAND = "edit the file by hand"


class OverlayEditError(ValueError):
    """An overlay edit was refused; the file was left unchanged.

    The message reads ``file:line:col: message`` when the problem has a place in the file
    (invalid YAML, an entry of the wrong shape, a duplicate field), else ``file: message``.
    """

    def __init__(
        self, file: str, message: str, line: int | None = None, column: int | None = None
    ) -> None:
        where = file if line is None else f"{file}:{line}:{column or 1}"
        super().__init__(f"{where}: {message}")
        self.file = file
        self.message = message
        self.line = line
        self.column = column

    def __reduce__(self) -> tuple[Any, ...]:  # keeps the fields across processes
        return type(self), (self.file, self.message, self.line, self.column)


class CannotSplice(Exception):
    """The edit cannot be made without disturbing other text; carries the reason."""


# --- reading, checking and writing files ----------------------------------------------


@dataclass(frozen=True, slots=True)
class _Encoding:
    """How the file stores its text, so that a rewrite keeps it: BOM and CRLF line ends."""

    bom: bool = False
    crlf: bool = False

    def encode(self, text: str) -> bytes:
        if self.crlf:
            text = text.replace("\n", "\r\n")
        return (codecs.BOM_UTF8 if self.bom else b"") + text.encode("utf-8")


@dataclass(frozen=True, slots=True)
class Document:
    text: str
    root: MappingNode | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Edit:
    text: str
    expected: dict[str, Any]


def read_text(path: Path) -> tuple[str, _Encoding] | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise OverlayEditError(
            str(path), f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    encoding = _Encoding(bom=raw.startswith(codecs.BOM_UTF8), crlf="\r\n" in text)
    return text.replace("\r\n", "\n"), encoding


def edit_file(
    path: Path,
    edit: Callable[[Document], Edit | None],
    *,
    create: bool,
    header: str,
) -> None:
    """Read, edit, check and write ``path`` under its lock; a missing or empty file starts
    as ``header`` (a comment saying what the file is)."""
    where = str(path)
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    lock = _locked(path) if path.parent.is_dir() else contextlib.nullcontext()
    with lock:
        read = read_text(path)
        text, encoding = read if read is not None else ("", _Encoding())
        if not text.strip():
            text = header
        document = parse(text, where)
        try:
            change = edit(document)
            if change is None:
                return
            _verify(change, where)
        except CannotSplice as exc:
            raise OverlayEditError(
                where,
                f"this change cannot be made without disturbing other parts of the file "
                f"({exc}); the file was left unchanged, {BY_HAND}",
            ) from None
        _write_atomically(path, encoding.encode(change.text))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Exclusive lock shared by every process editing ``path``; released on close."""
    fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` so that readers see the old or the new file, whole."""
    try:
        mode: int | None = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = None  # a new file gets the default mode (0o666 less the umask)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(
        temporary,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
        0o666 if mode is None else mode,
    )
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)


def _new_yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Representer = _Representer
    yaml.width = 1 << 20  # never fold a rendered value over several lines
    return yaml


def parse(text: str, where: str) -> Document:
    yaml = _new_yaml()
    try:
        root = yaml.compose(text)
        loaded = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "not valid YAML"
        if exc.context and exc.problem:
            problem = f"{problem} ({exc.context})"
        if mark is None:
            raise OverlayEditError(where, f"invalid YAML: {problem}") from None
        raise OverlayEditError(
            where, f"invalid YAML: {problem}", mark.line + 1, mark.column + 1
        ) from None
    except YAMLError as exc:
        raise OverlayEditError(where, f"invalid YAML: {exc}") from None
    if root is None:
        return Document(text, None, {})
    if not isinstance(root, MappingNode):
        raise OverlayEditError(
            where,
            "the top level of an overlay must be a mapping (label:, fields:, ...)",
            root.start_mark.line + 1,
            root.start_mark.column + 1,
        )
    return Document(text, root, _plain(loaded, where))


def _verify(change: Edit, where: str) -> None:
    """The edited text must parse to exactly the intended data, or it is not written."""
    try:
        data = parse(change.text, where).data
    except OverlayEditError as exc:
        raise CannotSplice(f"the result would not be valid YAML: {exc.message}") from None
    if canon(data) != canon(change.expected):
        raise CannotSplice("the result would change more than the field's entry")


def key_position(root: MappingNode | None, *keys: str) -> tuple[int | None, int | None]:
    """1-based line and column of the key at the end of ``keys``, when it is found."""
    node: Node | None = root
    key_node: Node | None = None
    for key in keys:
        if not isinstance(node, MappingNode) or (index := _find(node, key)) is None:
            return None, None
        key_node, node = node.value[index]
    if key_node is None:
        return None, None
    return key_node.start_mark.line + 1, key_node.start_mark.column + 1


# --- values: checking, rendering and comparing ----------------------------------------


def check_keys(mapping: Mapping[Any, Any], where: str, at: str) -> Mapping[str, Any]:
    for key in mapping:
        if not isinstance(key, str) or not key:
            raise OverlayEditError(where, f"{at}: keys must be non-empty strings, not {key!r}")
    return mapping


def clean_mapping(mapping: Mapping[str, Any], where: str, at: str) -> dict[str, Any]:
    return {
        key: clean(value, where, f"{at}.{key}")
        for key, value in check_keys(mapping, where, at).items()
    }


def clean(value: Any, where: str, at: str) -> Any:
    """``value`` as plain YAML data (dict, list, str, int, float, Decimal, bool, None).

    Subclasses (``StrEnum`` members, say) become their base type, so the representer never
    falls back to a Python-specific tag.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Decimal):
        if value.is_snan():
            raise OverlayEditError(where, f"{at}: a signalling NaN cannot be written")
        return value
    if isinstance(value, Mapping):
        return clean_mapping(value, where, at)
    if isinstance(value, list | tuple):
        return [clean(item, where, f"{at}[{i}]") for i, item in enumerate(value)]
    raise OverlayEditError(
        where,
        f"{at}: cannot write a {type(value).__name__}; values must be strings, numbers, "
        "booleans, null, lists or mappings",
    )


def _flow(value: Any) -> Any:
    """Clean data as ruamel.yaml objects whose collections are written in flow style."""
    if isinstance(value, dict):
        mapping = CommentedMap((k, _flow(v)) for k, v in value.items())
        mapping.fa.set_flow_style()
        return mapping
    if isinstance(value, list):
        sequence = CommentedSeq(_flow(v) for v in value)
        sequence.fa.set_flow_style()
        return sequence
    return value


def _render_pair(key: str, value: Any) -> str:
    """``key: value`` on one line, valid in block and in flow context."""
    text = _dump({key: value})
    if not (text.startswith("{") and text.endswith("}")) or "\n" in text:
        raise CannotSplice(f"a value was not rendered on one line: {text!r}")
    return text[1:-1]


def render_value(value: Any) -> str:
    """``value`` on one line, valid in block and in flow context."""
    # Not inside ``[...]``: a flow sequence writes a one-key mapping without its braces.
    pair = _render_pair("_", value)
    if not pair.startswith("_: "):
        raise CannotSplice(f"a value was rendered as {pair!r}")
    return pair[3:]


def _dump(value: Any) -> str:
    out = io.StringIO()
    _new_yaml().dump(_flow(value), out)
    return out.getvalue().rstrip("\n")


def _yaml11_reads_as_non_string(text: str) -> bool:
    """Whether YAML 1.1 readers (PyYAML, which Tessera's loader uses) resolve the plain
    scalar ``text`` to something else than a string (``yes``, ``1:20``, ``0o7``, ...)."""
    resolver: Any = pyyaml.resolver.Resolver()
    tag = resolver.resolve(pyyaml.ScalarNode, text, (True, False))
    return bool(tag != _STR_TAG)


class _Representer(RoundTripRepresenter):
    """Writes values so that every YAML reader reads them back unchanged."""

    def represent_str(self, data: str) -> Any:
        if _yaml11_reads_as_non_string(data):
            return self.represent_scalar(_STR_TAG, data, style="'")
        return super().represent_str(data)

    def represent_none(self, data: None) -> Any:
        return self.represent_scalar("tag:yaml.org,2002:null", "null")

    def represent_float(self, data: float) -> Any:
        if data != data or data in (float("inf"), float("-inf")):
            return super().represent_float(data)
        text = repr(data)
        mantissa, _, exponent = text.partition("e")
        if exponent and "." not in mantissa:  # YAML 1.1 needs the dot: 1e+20 -> 1.0e+20
            text = f"{mantissa}.0e{exponent}"
        return self.represent_scalar("tag:yaml.org,2002:float", text)

    def represent_decimal(self, data: Decimal) -> Any:
        """Exact: ``Decimal("1.50")`` is written ``1.50``, never through a float."""
        if data.is_nan():
            text = ".nan"
        elif data.is_infinite():
            text = "-.inf" if data < 0 else ".inf"
        else:
            text = format(data, "f")
        is_float = not text.lstrip("-").isdigit()
        return self.represent_scalar(
            "tag:yaml.org,2002:float" if is_float else "tag:yaml.org,2002:int", text
        )


_Representer.add_representer(str, _Representer.represent_str)
_Representer.add_representer(type(None), _Representer.represent_none)
_Representer.add_representer(float, _Representer.represent_float)
_Representer.add_representer(Decimal, _Representer.represent_decimal)


def _plain(value: Any, where: str, parents: tuple[int, ...] = ()) -> Any:
    """ruamel.yaml's round-trip objects as plain Python data."""
    if isinstance(value, dict | list):
        if id(value) in parents:
            raise OverlayEditError(where, "a YAML alias refers to itself; " + BY_HAND)
        inner = (*parents, id(value))
        if isinstance(value, dict):
            return {_plain(k, where, inner): _plain(v, where, inner) for k, v in value.items()}
        return [_plain(item, where, inner) for item in value]
    return _plain_scalar(value, where)


def _plain_scalar(value: Any, where: str) -> Any:
    if isinstance(value, bool | ScalarBoolean):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, TaggedScalar):
        return _plain_scalar(value.value, where)
    if isinstance(value, datetime):
        return datetime(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            tzinfo=value.tzinfo,
        )
    if isinstance(value, date):
        return date(value.year, value.month, value.day)
    return value


def canon(value: Any) -> Any:
    """A form in which equal YAML data compares equal: ``1.50``, ``1.5`` and
    ``Decimal("1.5")`` are one number, ``true`` is not ``1``, and order does not count."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float | Decimal):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        return ("nan",) if number.is_nan() else ("number", number)
    if isinstance(value, dict):
        return ("map", {canon(k): canon(v) for k, v in value.items()})
    if isinstance(value, list):
        return ("seq", [canon(v) for v in value])
    return value


# --- splicing text at node positions --------------------------------------------------


def _compose(text: str) -> MappingNode:
    try:
        root = _new_yaml().compose(text)
    except YAMLError as exc:
        raise CannotSplice(f"an intermediate result is not valid YAML: {exc}") from None
    if not isinstance(root, MappingNode):
        raise CannotSplice("an intermediate result has no mapping at the top level")
    return root


def _find(mapping: MappingNode, key: str) -> int | None:
    for index, (key_node, _) in enumerate(mapping.value):
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return index
    return None


def _entry(text: str, name: str) -> tuple[Node, MappingNode, int]:
    """The ``fields`` key node, its mapping node and the index of the entry of ``name``."""
    root = _compose(text)
    fields_index = _find(root, "fields")
    if fields_index is None:
        raise CannotSplice("'fields' was not found")
    fields_key, fields = root.value[fields_index]
    index = _find(fields, name) if isinstance(fields, MappingNode) else None
    if index is None or not isinstance(fields, MappingNode):
        raise CannotSplice(f"the entry of '{name}' was not found")
    _no_alias(*fields.value[index])
    return fields_key, fields, index


def _no_alias(key: Node, value: Node) -> None:
    if value.start_mark.index < key.end_mark.index:
        raise CannotSplice(f"the value of '{key.value}' is a YAML alias")


def _is_implicit_null(node: Node) -> bool:
    """``key:`` with nothing after it; its marks point at the next token, not here."""
    return (
        isinstance(node, ScalarNode)
        and node.value == ""
        and not node.style
        and node.start_mark.index == node.end_mark.index
    )


def _is_block_collection(node: Node) -> bool:
    return isinstance(node, CollectionNode) and not node.flow_style


def _is_empty(node: Node) -> bool:
    """A scalar (the data was checked: it is null) or an empty flow mapping."""
    return isinstance(node, ScalarNode) or (isinstance(node, MappingNode) and not node.value)


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _next_line(text: str, index: int) -> int:
    """Offset just after the line break that ends the line holding ``index``."""
    end = text.find("\n", index)
    return len(text) if end < 0 else end + 1


def _colon_end(text: str, key: Node) -> int:
    index = int(key.end_mark.index)
    while index < len(text) and text[index] in " \t":
        index += 1
    if index >= len(text) or text[index] != ":":
        raise CannotSplice(f"the key '{key.value}' is not followed by ':'")
    return index + 1


def _node_end(text: str, node: Node) -> int:
    """Offset just after the last character of ``node``'s own text (not its comments)."""
    if isinstance(node, ScalarNode):
        end = int(node.end_mark.index)
        if node.style in ("|", ">"):  # a block scalar's mark includes the blank lines after it
            while end > node.start_mark.index and text[end - 1] in " \t\n":
                end -= 1
        return end
    if not isinstance(node, CollectionNode) or node.flow_style or not node.value:
        return int(node.end_mark.index)
    if isinstance(node, MappingNode):
        return _pair_end(text, *node.value[-1])
    return _node_end(text, node.value[-1])


def _pair_end(text: str, key: Node, value: Node) -> int:
    if value.start_mark.index < key.end_mark.index:  # an alias: ``key: *anchor``
        return _next_line(text, key.end_mark.index) - 1
    if _is_implicit_null(value):
        return _colon_end(text, key)
    return _node_end(text, value)


def _check_line_start(text: str, key: Node) -> int:
    start = _line_start(text, key.start_mark.index)
    if text[start : key.start_mark.index].strip():
        raise CannotSplice(f"the key '{key.value}' does not start its line")
    return start


def _insert_line(text: str, at: int, line: str) -> str:
    """Insert ``line`` (no line break) as a line of its own at line boundary ``at``."""
    prefix = "" if at == 0 or text[at - 1] == "\n" else "\n"
    return f"{text[:at]}{prefix}{line}\n{text[at:]}"


def _append_pair(text: str, mapping: MappingNode, pair: str) -> str:
    """Add ``pair`` (``key: value``) after the last entry of a non-empty or flow mapping."""
    if mapping.flow_style:
        if not mapping.value:
            brace = text.index("{", mapping.start_mark.index) + 1
            return text[:brace] + pair + text[brace:]
        end = _pair_end(text, *mapping.value[-1])
        return f"{text[:end]}, {pair}{text[end:]}"
    first_key = mapping.value[0][0]
    _check_line_start(text, first_key)
    at = _next_line(text, _pair_end(text, *mapping.value[-1]))
    return _insert_line(text, at, " " * first_key.start_mark.column + pair)


def _remove_pair(text: str, mapping: MappingNode, index: int, owner: Node) -> str:
    """Remove entry ``index`` of ``mapping``, the value of key ``owner``."""
    key, value = mapping.value[index]
    if mapping.flow_style:
        return _remove_flow_pair(text, mapping, index)
    start = _check_line_start(text, key)
    floor = _colon_end(text, owner) if index == 0 else _pair_end(text, *mapping.value[index - 1])
    first_free_line = _next_line(text, floor)
    while start > first_free_line:  # the comment lines directly above belong to the entry
        above = _line_start(text, start - 1)
        if not text[above:start].lstrip().startswith("#"):
            break
        start = above
    end = _next_line(text, _pair_end(text, key, value))
    blank_before = start > 0 and not text[_line_start(text, start - 1) : start].strip()
    following = text[end : _next_line(text, end)]
    if blank_before and following and not following.strip():
        end += len(following)  # do not leave two blank lines where the entry was
    text = text[:start] + text[end:]
    if len(mapping.value) == 1:  # nothing left: keep the key, as an empty mapping
        colon = _colon_end(text, owner)
        text = f"{text[:colon]} {{}}{text[colon:]}"
    return text


def _remove_flow_pair(text: str, mapping: MappingNode, index: int) -> str:
    key, value = mapping.value[index]
    if index + 1 < len(mapping.value):  # ``key: value, `` up to the next key
        start, end = key.start_mark.index, mapping.value[index + 1][0].start_mark.index
    elif index > 0:  # ``, key: value`` after the previous value
        start, end = _pair_end(text, *mapping.value[index - 1]), _pair_end(text, key, value)
    else:
        start, end = key.start_mark.index, _pair_end(text, key, value)
    return text[:start] + text[end:]


def _replace_value(text: str, key: Node, value: Node, rendered: str) -> str:
    _no_alias(key, value)
    if _is_implicit_null(value) or _is_block_collection(value):
        start = _colon_end(text, key)
        end = start if _is_implicit_null(value) else _node_end(text, value)
        return f"{text[:start]} {rendered}{text[end:]}"
    start, end = value.start_mark.index, _node_end(text, value)
    return text[:start] + rendered + text[end:]


def _detect_indent(root: MappingNode | None) -> int:
    """The file's mapping indentation: how far a nested block mapping's keys are indented
    from their parent key; 2 when the file has no nested block mapping."""
    pending: list[Node] = [] if root is None else [root]
    while pending:
        node = pending.pop(0)
        if not isinstance(node, MappingNode) or node.flow_style:
            continue
        for key, value in node.value:
            if isinstance(value, MappingNode) and not value.flow_style and value.value:
                step = value.value[0][0].start_mark.column - key.start_mark.column
                if step > 0:
                    return int(step)
            pending.append(value)
    return _DEFAULT_INDENT


# --- the edits: entries of ``fields`` and items of block lists ------------------------


def add_entry(text: str, root: MappingNode | None, name: str, entry: dict[str, Any]) -> str:
    """Append the entry of ``name`` at the end of ``fields``, creating ``fields`` if need be."""
    pair = _render_pair(name, entry)
    indent = _detect_indent(root)
    if root is None:  # empty, or only comments
        return _insert_line(text, len(text), f"fields:\n{' ' * indent}{pair}")
    index = _find(root, "fields")
    if index is None:
        if root.flow_style:
            return _append_pair(text, root, f"fields: {{{pair}}}")
        column = root.value[0][0].start_mark.column
        return _append_pair(text, root, f"fields:\n{' ' * (column + indent)}{pair}")
    key, value = root.value[index]
    _no_alias(key, value)
    if root.flow_style and not isinstance(value, MappingNode):  # ``{fields: null}``
        return _replace_value(text, key, value, f"{{{pair}}}")
    if _is_empty(value) and not root.flow_style:  # ``fields:``, ``fields: {}``: a block
        colon = _colon_end(text, key)
        text = text[:colon] + text[_pair_end(text, key, value) :]
        at = _next_line(text, colon)
        return _insert_line(text, at, " " * (key.start_mark.column + indent) + pair)
    if not isinstance(value, MappingNode):
        raise CannotSplice("'fields' is not a mapping")
    return _append_pair(text, value, pair)


def remove_entry(text: str, name: str) -> str:
    fields_key, fields, index = _entry(text, name)
    return _remove_pair(text, fields, index, fields_key)


def replace_entry(text: str, name: str, entry: dict[str, Any]) -> str:
    """``name:`` (null) becomes ``name: {entry}``."""
    _, fields, index = _entry(text, name)
    key, value = fields.value[index]
    return _replace_value(text, key, value, render_value(entry))


def _entry_mapping(text: str, name: str) -> tuple[Node, MappingNode]:
    _, fields, index = _entry(text, name)
    key, value = fields.value[index]
    if not isinstance(value, MappingNode):
        raise CannotSplice(f"the entry of '{name}' is not a mapping")
    return key, value


def change_entry(text: str, name: str, before: dict[str, Any], changes: dict[str, Any]) -> str:
    """Set and remove keys of an existing entry, each in place: new keys first, so that a
    block entry never passes through an empty state; unchanged values keep their text."""
    for key, value in changes.items():
        if value is None or (key in before and canon(before[key]) == canon(value)):
            continue
        entry = _entry_mapping(text, name)[1]
        index = _find(entry, key)
        if index is None:
            text = _append_pair(text, entry, _render_pair(key, value))
        else:
            old_key, old_value = entry.value[index]
            text = _replace_value(text, old_key, old_value, render_value(value))
    for key, value in changes.items():
        if value is not None or key not in before:
            continue
        entry_key, entry = _entry_mapping(text, name)
        index = _find(entry, key)
        if index is None:
            raise CannotSplice(f"the key '{key}' of '{name}' was not found")
        text = _remove_pair(text, entry, index, entry_key)
    return text


def append_to_list(text: str, keys: tuple[str, ...], item: str) -> str:
    indent = (
        _detect_indent(_compose(text)) if text.strip() and _has_mapping(text) else _DEFAULT_INDENT
    )
    node: MappingNode | None = _compose(text) if _has_mapping(text) else None
    for depth, key in enumerate(keys):
        if node is None:  # nothing yet: the whole path as a block at the end of the file
            return _insert_line(text, len(text), _block(keys[depth:], item, 0, indent))
        if node.flow_style:
            raise CannotSplice(f"'{key}' sits in a flow mapping")
        index = _find(node, key)
        if index is None:
            column = node.value[0][0].start_mark.column if node.value else 0
            block = _block(keys[depth:], item, column, indent)
            return (
                _append_pair(text, node, block.lstrip(" "))
                if node.value
                else _insert_line(text, len(text), block)
            )
        key_node, value = node.value[index]
        _no_alias(key_node, value)
        if depth < len(keys) - 1:
            if _is_empty(value):
                colon = _colon_end(text, key_node)
                text = text[:colon] + text[_pair_end(text, key_node, value) :]
                rest = _block(keys[depth + 1 :], item, key_node.start_mark.column + indent, indent)
                return _insert_line(text, _next_line(text, colon), rest)
            if not isinstance(value, MappingNode):
                raise CannotSplice(f"'{key}' is not a mapping")
            node = value
            continue
        if _is_empty(value):  # ``rules:`` with nothing: a block list under it
            colon = _colon_end(text, key_node)
            text = text[:colon] + text[_pair_end(text, key_node, value) :]
            line = " " * (key_node.start_mark.column + indent) + "- " + item
            return _insert_line(text, _next_line(text, colon), line)
        if not isinstance(value, SequenceNode) or value.flow_style or not value.value:
            raise CannotSplice(f"'{key}' is not a block list")
        dash = value.start_mark.column
        at = _next_line(text, _node_end(text, value.value[-1]))
        return _insert_line(text, at, " " * dash + "- " + item)
    raise CannotSplice("no key to append to")


def _has_mapping(text: str) -> bool:
    try:
        return isinstance(_new_yaml().compose(text), MappingNode)
    except YAMLError:
        return False


def _block(keys: tuple[str, ...], item: str, column: int, indent: int) -> str:
    """``keys`` as nested block keys from ``column``, the last holding a list of ``item``."""
    lines = [" " * (column + depth * indent) + f"{key}:" for depth, key in enumerate(keys)]
    lines.append(" " * (column + len(keys) * indent) + "- " + item)
    return "\n".join(lines)

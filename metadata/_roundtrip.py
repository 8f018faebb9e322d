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
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode
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


def _find(mapping: MappingNode, key: str) -> int | None:
    for index, (key_node, _) in enumerate(mapping.value):
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return index
    return None


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

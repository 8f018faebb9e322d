"""What an upload is checked for: its real content type (read from its bytes, never taken
from the client's ``Content-Type`` or the name's extension), whether a field accepts that
type, and a file name safe to keep and to send back.

Content types are sniffed with ``puremagic`` (pure Python, maintained, knows several
hundred signatures including HTML and SVG, which matter most: a browser would run them).
Bytes no signature matches are ``text/plain`` when they are UTF-8 text without control
characters, else ``application/octet-stream``.
"""

from __future__ import annotations

import mimetypes
import unicodedata

import puremagic

OCTET_STREAM = "application/octet-stream"
ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
    }
)
"""Types a browser would run if it showed them: never chosen by a file's name alone."""
MAX_NAME_BYTES = 255


def accepted(content_type: str, patterns: tuple[str, ...] | None) -> bool:
    """Whether ``content_type`` matches one of ``patterns`` (``image/*`` matches every
    image); None accepts any type."""
    if patterns is None:
        return True
    major = content_type.split("/", 1)[0]
    return any(p == content_type or p == f"{major}/*" or p == "*/*" for p in patterns)


def sniff(head: bytes, filename: str) -> str:
    """The content type of a file from its first bytes; the name's extension only chooses
    between the types its bytes allow (a ``.xlsx`` and a ``.docx`` are both ZIP files)."""
    if not head:
        return "application/x-empty"
    try:
        guesses = puremagic.magic_string(head)
    except (puremagic.PureError, ValueError):
        guesses = []
    if guesses:
        best = max(g.confidence for g in guesses)
        top = [g for g in guesses if g.confidence == best and g.mime_type]
        suffix = _suffix(filename)
        for guess in top:
            if suffix and guess.extension.lower() == suffix:
                return str(guess.mime_type)
        if top:
            return str(top[0].mime_type)
    return _text_type(head, filename)


def _suffix(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot > 0 else ""


def _text_type(head: bytes, filename: str) -> str:
    """``text/plain`` (or ``text/csv`` for a ``.csv`` name: a text type the name chooses,
    never an active one) for UTF-8 text; ``application/octet-stream`` otherwise."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the head
            return OCTET_STREAM
        text = head[: exc.start].decode("utf-8")
    if any(unicodedata.category(c) == "Cc" and c not in "\t\n\r\f" for c in text):
        return OCTET_STREAM
    guessed, _ = mimetypes.guess_type(f"x{_suffix(filename)}")
    if guessed and guessed.startswith("text/") and guessed not in ACTIVE_TYPES:
        return guessed
    return "text/plain"


def safe_filename(name: str) -> str:
    """A file name to keep: the last part of any path, without NUL, control characters,
    unpaired surrogates or leading dots, at most 255 bytes of UTF-8 (the extension kept);
    ``file`` when nothing is left."""
    name = name.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become "?"
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in {"Cc", "Cf", "Cs"})
    name = unicodedata.normalize("NFC", name).strip().lstrip(".").strip()
    if not name:
        return "file"
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        suffix = _suffix(name)
        suffix = suffix if len(suffix.encode("utf-8")) <= 16 else ""
        stem = name[: len(name) - len(suffix)]
        budget = MAX_NAME_BYTES - len(suffix.encode("utf-8"))
        stem = stem.encode("utf-8")[:budget].decode("utf-8", "ignore")
        name = stem + suffix
    return name

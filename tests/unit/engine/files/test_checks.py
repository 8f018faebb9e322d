"""Content types are read from the bytes; names are made safe; sizes and patterns parse."""

from __future__ import annotations

import pytest

from engine.files import accepted, safe_filename, sniff
from metadata._files import content_type_problem, parse_size


@pytest.mark.parametrize(
    ("head", "name", "expected"),
    [
        (b"%PDF-1.7\n", "a.pdf", "application/pdf"),
        (b"%PDF-1.7\n", "a.png", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "a.pdf", "image/png"),
        (b"GIF89a" + b"\x00" * 10, "x", "image/gif"),
        (b"<!DOCTYPE html><html>", "a.txt", "text/html"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "a.png", "image/svg+xml"),
        (b"name,amount\nx,1\n", "a.csv", "text/csv"),
        (b"plain words", "a.pdf", "text/plain"),
        (b"plain words", "a.html", "text/plain"),
        ("café".encode(), "a", "text/plain"),
        (b"\x00\x01\x02binary", "a.txt", "application/octet-stream"),
        (b"", "a.pdf", "application/x-empty"),
    ],
)
def test_sniff(head: bytes, name: str, expected: str) -> None:
    assert sniff(head, name) == expected


def test_accepted() -> None:
    assert accepted("image/png", ("image/*",))
    assert accepted("application/pdf", ("application/pdf", "image/*"))
    assert not accepted("text/html", ("application/pdf", "image/*"))
    assert accepted("text/html", None)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\a.doc", "a.doc"),
        ("a\x00b\x1fc\x7f.pdf", "abc.pdf"),
        ("\ud800.pdf", "?.pdf"),
        ("a\u202egnp.exe", "agnp.exe"),  # right-to-left override removed
        ("  .hidden ", "hidden"),
        ("", "file"),
        ("/", "file"),
    ],
)
def test_safe_filename(given: str, expected: str) -> None:
    assert safe_filename(given) == expected


def test_long_names_keep_their_extension_within_255_bytes() -> None:
    name = safe_filename("é" * 400 + ".pdf")
    assert name.endswith(".pdf")
    assert len(name.encode("utf-8")) <= 255
    name.encode("utf-8")  # whole characters only


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("10MB", 10_000_000),
        ("512kB", 512_000),
        ("2MiB", 2 * 1024**2),
        ("1.5GB", 1_500_000_000),
        (4096, 4096),
        ("0", None),
        (0, None),
        (-5, None),
        (True, None),
        ("ten", None),
        ("1e999MB", None),
        (2**70, None),
        ("9" * 500, None),
    ],
)
def test_parse_size(text: object, size: int | None) -> None:
    assert parse_size(text) == size


def test_content_type_patterns() -> None:
    assert content_type_problem("application/pdf") is None
    assert content_type_problem("image/*") is None
    assert content_type_problem("pdf") is not None
    assert content_type_problem("*/x") is not None
    assert content_type_problem(5) is not None

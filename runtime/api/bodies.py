"""Reading request bodies: size-limited, strict JSON, decimals kept exact."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from runtime.api.problems import ApiProblem

if TYPE_CHECKING:
    from starlette.requests import Request


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):  # not "²": int() fails
            raise ApiProblem(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise ApiProblem(413, f"the request body is larger than {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiProblem(413, f"the request body is larger than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise ApiProblem(400, "the request needs a JSON body")
    try:
        value = json.loads(
            body.decode("utf-8"), parse_float=Decimal, parse_constant=_refuse_constant
        )
    except UnicodeDecodeError:
        raise ApiProblem(400, "the request body is not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise ApiProblem(400, f"the request body is not valid JSON: {exc}") from None
    if _SURROGATE_ESCAPE.search(body):
        _refuse_unpaired_surrogates(value)
    return value


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
"""Only an escape can put a surrogate in decoded JSON (UTF-8 bytes cannot encode one)."""


def _refuse_unpaired_surrogates(value: Any) -> None:
    """422 naming each place (``name``, ``lines[0].description``, a key) where the body
    holds an unpaired surrogate (``"\\ud800"``): valid JSON syntax, but not text; no
    database can store it and no response could echo it. A top-level array (``_bulk``)
    reports the item's ``index``."""
    errors: list[dict[str, Any]] = []
    stack: list[tuple[Any, str, int | None]] = [(value, "", None)]
    while stack and len(errors) < _MAX_REPORTED:
        item, path, index = stack.pop()
        if isinstance(item, str):
            if not _utf8(item):
                errors.append(_surrogate_error(path, index, "must not contain unpaired surrogates"))
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else str(key)
                if not _utf8(key):
                    errors.append(
                        _surrogate_error(path, index, "has a key with an unpaired surrogate")
                    )
                    continue
                stack.append((child, child_path, index))
        elif isinstance(item, list):
            for position, child in enumerate(item):
                if path == "" and index is None:
                    stack.append((child, "", position))
                else:
                    stack.append((child, f"{path}[{position}]", index))
    if errors:
        errors.sort(key=lambda e: (e.get("index", -1), e["field"]))
        count = len({e["field"] for e in errors})
        noun = "field is" if count == 1 else "fields are"
        raise ApiProblem(422, f"{count} {noun} invalid", "validation", errors=errors)


_MAX_REPORTED = 50


def _utf8(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _surrogate_error(path: str, index: int | None, message: str) -> dict[str, Any]:
    error: dict[str, Any] = {
        "field": path,
        "code": "format",
        "message": message + " (\\ud800-\\udfff)",
    }
    if index is not None:
        error["index"] = index
    return error

"""Reading request bodies: size-limited, strict JSON, decimals kept exact."""

from __future__ import annotations

import json
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
        if not declared.isdigit():
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
        return json.loads(
            body.decode("utf-8"), parse_float=Decimal, parse_constant=_refuse_constant
        )
    except UnicodeDecodeError:
        raise ApiProblem(400, "the request body is not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise ApiProblem(400, f"the request body is not valid JSON: {exc}") from None

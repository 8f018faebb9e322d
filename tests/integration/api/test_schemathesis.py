"""Property-based fuzzing of the generated API from its own OpenAPI document.

A real ``tessera serve`` process is started on loopback and schemathesis sends generated
valid and invalid requests to every operation with every check it has: no 5xx, every
status, header, content type and body as documented, valid requests accepted, invalid
ones refused, 405 with ``Allow`` for a method a path does not list. The few answers that
depend on data a document cannot describe are allowed where they occur (``CONFIG``);
everything else is drift between the document and the server, and fails.

Bounded: a handful of examples per operation (about half a minute), ten on PostgreSQL and
five on SQLite: the document and most answers are the same on both databases, so the
second run's fuzzing phase is the shorter one (its examples and coverage phases are whole).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.support.cli import REPO
from tests.support.identity import bearer
from tests.support.server import serving

if TYPE_CHECKING:
    from tests.conftest import Instance

SCHEMATHESIS = [str(Path(sys.executable).parent / "schemathesis")]
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
"""schemathesis' default statuses for a valid request (5xx: not_a_server_error's job)."""
REFUSED = ["400", "401", "403", "404", "405", "406", "409", "412", "413", "415", "422", "428"]
CONFIG = f"""
[generation]
# text may not hold U+0000 (PostgreSQL cannot store it): refused with 400/422, as the API
# guide says; the document does not repeat it on every string
allow-x00 = false

[checks.negative_data_rejection]
# schemathesis' list, plus 412 (a malformed If-Match) and 413 (more than 1,000 records
# in a _bulk, or a body over max_body_bytes)
expected-statuses = {json.dumps([*REFUSED, "429", "5xx"])}

[[operations]]
# writes of a valid body can still be refused for what only the data decides: a
# reference to a record that does not exist, a rule, an upsert that creates without the
# fields required on create (422); an If-Match of another version (412)
include-operation-id-regex = "^(create|bulk|update|upsert|delete)_"
checks.positive_data_acceptance.expected-statuses = {json.dumps([*ACCEPTED, "412", "422"])}

[[operations]]
# an aggregate's sort names group keys and measures of the same request: a dependency
# between parameters that OpenAPI cannot state
include-operation-id-regex = "^aggregate_"
checks.positive_data_acceptance.expected-statuses = {json.dumps([*ACCEPTED, "400"])}

[[operations]]
# a report's checks relate its parameters (from <= to): a dependency OpenAPI cannot state
# either; the 400 is declared, its description quoting each check's message
include-operation-id-regex = "^report_"
checks.positive_data_acceptance.expected-statuses = {json.dumps([*ACCEPTED, "400"])}
"""


@pytest.mark.slow  # generated requests to every operation of a real server: ~30 s on SQLite
def test_the_server_does_what_its_openapi_document_says(
    backend: str, kitchen: Instance, tmp_path: Path
) -> None:
    token = kitchen.token()
    (tmp_path / "schemathesis.toml").write_text(CONFIG, encoding="utf-8")
    with serving(kitchen.path) as base:
        api = f"{base}/api/v1/kitchen"
        category = httpx.post(f"{api}/category", json={"name": "Seed"}, headers=bearer(token))
        item = {"name": "Seed", "code": "SEED-1", "category": category.json()["data"]["id"]}
        created = httpx.post(f"{api}/item", json=item, headers=bearer(token))
        httpx.post(
            f"{api}/tag",
            json={"label": "seed", "item": created.json()["data"]["id"]},
            headers=bearer(token),
        )
        result = subprocess.run(
            [
                *SCHEMATHESIS,
                "--config-file",
                str(tmp_path / "schemathesis.toml"),
                "run",
                f"{base}/openapi.json",
                "--checks",
                "all",
                "--mode",
                "all",
                "--max-examples",
                "10" if backend == "postgresql" else "5",
                "--seed",
                "20261122",
                "--phases",
                "examples,coverage,fuzzing",
                "--generation-database",
                "none",
                # it would revoke the token every other request is made with
                "--exclude-path",
                "/api/v1/auth/revoke",
                "--no-color",
                "--header",
                f"Authorization: Bearer {token}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            cwd=tmp_path,
            env={
                **os.environ,
                "PYTHONPATH": str(REPO),
                "SCHEMATHESIS_HOOKS": "tests.integration.api.fuzz_hooks",
            },
        )
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary + result.stderr[-3000:]
    assert " passed" in summary
    assert "401 Unauthorized (" not in summary  # the token held (changing fields is off: 403)

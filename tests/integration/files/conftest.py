"""A pack with file fields and grants, migrated on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import Instance, write_instance

if TYPE_CHECKING:
    from pathlib import Path

PACK = {
    "module.yaml": "name: papers\nlabel: Papers\nversion: 1.0.0\n",
    "entities/claim.yaml": """
label: Claim
title: title
document: true
fields:
  title: {type: string, required: true}
  receipt: {type: file, accept: [application/pdf, image/*], max_size: 2kB}
  photo: {type: file, allow_on_submit: true}
  secret_scan: {type: file}
  owner_note: {type: string}
  total: {type: decimal, precision: 12, scale: 2, computed: "lines | sum(attribute='amount')"}
  lines: {type: children, entity: claim_line}
""",
    "entities/claim_line.yaml": """
label: Claim line
fields:
  what: {type: string}
  amount: {type: decimal, precision: 12, scale: 2}
  scan: {type: file, label: Scan, accept: [application/pdf, image/*], max_size: 2kB}
  stamp: {type: file, label: Stamp, allow_on_submit: true}
""",
    "entities/trip.yaml": """
label: Trip
title: title
fields:
  title: {type: string, required: true}
  legs: {type: children, entity: trip_leg}
""",
    "entities/trip_leg.yaml": """
label: Trip leg
fields:
  place: {type: string}
  ticket: {type: file}
""",
    "roles.yaml": """
roles:
  clerk:
    grants:
      - entity: claim
        actions: [read, create, update, delete]
        where: "created_by == user.id"
        hidden_fields: [secret_scan]
      - {entity: trip, actions: [read, create, update]}
  viewer:
    grants:
      - {entity: claim, actions: [read]}
  auditor:
    grants:
      - {entity: claim, actions: [read, update], hidden_fields: [lines]}
  approver:
    grants:
      - {entity: claim, actions: [read, update], readonly_fields: [lines]}
""",
}

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40


@pytest.fixture
def papers(db_url: str, tmp_path: Path) -> Instance:
    return papers_instance(db_url, tmp_path)


def papers_instance(db_url: str, tmp_path: Path) -> Instance:
    """The papers pack migrated in ``tmp_path``, files in its folder (64 kB at most)."""
    for relative, text in PACK.items():
        path = tmp_path / "packs" / "papers" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    settings = {"max_size": "64kB", "content_types": ["application/pdf", "image/*", "text/*"]}
    instance = write_instance(
        tmp_path / "i", db_url, ["papers"], [tmp_path / "packs"], files=settings
    )
    instance.migrate()
    return instance


def make_claim(client: Any, title: str = "Taxi") -> str:
    response = client.post("/api/v1/papers/claim", json={"title": title})
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])

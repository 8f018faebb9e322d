"""A create grant's ``where`` is checked on the record as it will be stored, defaults and
computed fields included, also when those wait for the records they read (a default
that traverses a reference, a line's lookup of its parent's account): a rep may create
what their default owner field makes theirs, and may not create, through a default, what
their grant leaves out. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.conftest import pack_instance
from tests.support.identity import bearer

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

    from tests.conftest import Instance

CRM = {
    "module.yaml": 'name: crm\nversion: "1.0.0"\n',
    "entities/account.yaml": """\
title: name
fields:
  name: {type: string, required: true, unique: true}
  tier: {type: enum, values: [standard, vip], default: standard}
""",
    "entities/deal.yaml": """\
fields:
  title:   {type: string, required: true}
  account: {type: reference, to: account, required: true}
  tier:    {type: string, default: "{{ account.tier }}"}
  owner:   {type: string, default: "{{ user.id if user else none }}"}
""",
    "roles.yaml": """\
roles:
  rep:
    grants:
      - {entity: account, actions: [read]}
      - {entity: deal, actions: [read, create], where: "owner == user.id and tier != 'vip'"}
""",
}
URL = "/api/v1/crm"


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> Instance:
    return pack_instance(tmp_path, db_url, "crm", CRM)


@pytest.fixture
def client(instance: Instance) -> Iterator[TestClient]:
    with instance.client() as client:
        yield client


def test_the_grant_sees_the_defaults_that_read_other_records(
    instance: Instance, client: TestClient
) -> None:
    plain = client.post(f"{URL}/account", json={"name": "Plain"}).json()["data"]
    vip = client.post(f"{URL}/account", json={"name": "Big", "tier": "vip"}).json()["data"]
    rep = bearer(instance.token("rita", ("rep",)))
    mine = client.post(f"{URL}/deal", json={"title": "A", "account": plain["id"]}, headers=rep)
    assert mine.status_code == 201, mine.text
    assert mine.json()["data"]["tier"] == "standard"
    refused = client.post(f"{URL}/deal", json={"title": "B", "account": vip["id"]}, headers=rep)
    assert refused.status_code == 403, refused.text
    assert [d["title"] for d in client.get(f"{URL}/deal").json()["data"]] == ["A"]

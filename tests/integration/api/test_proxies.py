"""Which client address ``tessera serve`` believes: the peer's, unless the peer is a proxy
named in ``trusted_proxies`` (tessera.yaml), whose ``X-Forwarded-For`` then names the
client. uvicorn's own default believes the header from 127.0.0.1, which let a client on the
same host rotate it past the per-address sign-in lock. Against a real ``tessera serve``,
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from metadata import DefinitionError
from runtime.settings import Settings
from tests.conftest import Instance, write_instance
from tests.integration.api.test_auth import rows
from tests.support.identity import issue_token
from tests.support.server import serving

if TYPE_CHECKING:
    from pathlib import Path

PASSWORD = "correct horse battery"


def instance_with(db_url: str, tmp_path: Path, **settings: Any) -> Instance:
    # one failed sign-in per user name, four per client address
    auth = {"login_attempts": 1, "login_window_seconds": 60}
    instance = write_instance(tmp_path / "instance", db_url, ["kitchen"], auth=auth, **settings)
    instance.migrate()
    issue_token(db_url, "ada", ("admin",), password=PASSWORD)
    return instance


def sign_in(base: str, username: str, password: str, forwarded_for: str) -> int:
    response = httpx.post(
        f"{base}/api/v1/auth/token",
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return response.status_code


def addresses(instance: Instance) -> list[str]:
    """The client address of each refused sign-in in the audit trail."""
    found = rows(
        instance.settings.database_url,
        "SELECT changes FROM tessera_audit WHERE action = 'login_failed' ORDER BY id",
    )
    return [json.loads(str(changes))["address"][1] for (changes,) in found]


@pytest.mark.slow  # a real `tessera serve` process, and five argon2 sign-ins
def test_by_default_a_forwarded_for_header_changes_no_address(db_url: str, tmp_path: Path) -> None:
    instance = instance_with(db_url, tmp_path)
    with serving(instance.path) as base:
        for i in range(4):  # the address limit, each from "another" address
            assert sign_in(base, f"guess{i}", "wrong", f"203.0.113.{i}") == 401
        assert sign_in(base, "ada", PASSWORD, "203.0.113.99") == 429
    assert addresses(instance) == ["127.0.0.1"] * 5


@pytest.mark.slow  # a real `tessera serve` process, and eleven argon2 sign-ins
def test_a_trusted_proxy_names_the_client(db_url: str, tmp_path: Path) -> None:
    instance = instance_with(db_url, tmp_path, trusted_proxies=["127.0.0.1", "::1"])
    with serving(instance.path) as base:
        for i in range(5):  # more than the address limit, from as many clients
            assert sign_in(base, f"guess{i}", "wrong", f"203.0.113.{i}") == 401
        assert sign_in(base, "ada", PASSWORD, "203.0.113.99") == 200
        # a client cannot pass itself off as the proxy's other clients: the proxy appends
        # the address it saw, and that is the one believed
        for i in range(4):
            assert sign_in(base, f"other{i}", "wrong", f"198.51.100.{i}, 203.0.113.50") == 401
        assert sign_in(base, "ada", PASSWORD, "198.51.100.2, 203.0.113.50") == 429
    assert addresses(instance)[:5] == [f"203.0.113.{i}" for i in range(5)]
    assert set(addresses(instance)[5:]) == {"203.0.113.50"}


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        (None, ()),
        (["10.0.0.5"], ("10.0.0.5",)),
        (["10.1.2.3/8", "0:0::1", "10.0.0.0/8"], ("10.0.0.0/8", "::1")),
    ],
)
def test_trusted_proxies_are_addresses_or_networks(
    tmp_path: Path, given: list[str] | None, kept: tuple[str, ...]
) -> None:
    text = "" if given is None else f"trusted_proxies: {json.dumps(given)}\n"
    (tmp_path / "tessera.yaml").write_text(text, encoding="utf-8")
    assert Settings.load(tmp_path / "tessera.yaml").trusted_proxies == kept


@pytest.mark.parametrize("given", ['"*"', '["*"]', '["proxy.example"]', "[10.0.0.300]"])
def test_trusted_proxies_refuse_names_and_wildcards(tmp_path: Path, given: str) -> None:
    (tmp_path / "tessera.yaml").write_text(f"trusted_proxies: {given}\n", encoding="utf-8")
    with pytest.raises(DefinitionError, match="trusted_proxies"):
        Settings.load(tmp_path / "tessera.yaml")

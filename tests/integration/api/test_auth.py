"""Authentication: every API call needs a valid bearer token; sign-in issues one for a user
name and password, is throttled after failures, and tokens expire and can be revoked;
administrative APIs need the admin role. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from engine import open_database
from engine.identity import SignInCandidate, check_password
from runtime.app import build_app
from tests.conftest import Instance, pack_instance, write_instance
from tests.support.cli import tessera
from tests.support.identity import bearer, issue_token

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery"


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> Instance:
    instance = write_instance(
        tmp_path / "instance",
        db_url,
        ["kitchen"],
        auth={"login_attempts": 3, "login_window_seconds": 60, "token_cache_seconds": 0},
    )
    instance.migrate()
    issue_token(db_url, "ada", ("admin",), password=PASSWORD)
    issue_token(db_url, "bob", ("clerk",), password=PASSWORD)
    return instance


@pytest.fixture
def anonymous(instance: Instance) -> Iterator[TestClient]:
    with instance.client(signed_in=False) as client:
        yield client


def sign_in(client: TestClient, username: str, password: str) -> Any:
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


def rows(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    import asyncio

    async def run() -> list[tuple[Any, ...]]:
        database = await open_database(database_url, pool_size=1)
        try:
            async with database.connection() as conn:
                return [tuple(r) for r in await conn.fetch(sql, [])]
        finally:
            await database.close()

    return asyncio.run(run())


def test_api_calls_need_a_token_and_health_does_not(anonymous: TestClient) -> None:
    for method, path in [
        ("GET", "/api/v1/kitchen/tag"),
        ("POST", "/api/v1/kitchen/tag"),
        ("GET", "/api/v1/kitchen/tag/1"),
        ("GET", "/api/v1/_meta/entities"),
        ("GET", "/api/v1/_outbox"),
        ("GET", "/api/v1/auth/me"),
        ("GET", "/api/v1/no_such/thing"),
    ]:
        response = anonymous.request(method, path)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["type"] == "/problems/unauthenticated"
    assert anonymous.get("/healthz").status_code == 200
    for header in ["Bearer", "Bearer tsr_nope", "Basic YWRhOnB3", "tsr_x", "Bearer " + "x" * 5000]:
        response = anonymous.get("/api/v1/kitchen/tag", headers={"Authorization": header})
        assert response.status_code == 401, header


def test_sign_in_issues_a_token_that_opens_the_api(anonymous: TestClient) -> None:
    response = sign_in(anonymous, "ada", PASSWORD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 12 * 3600
    assert response.headers["cache-control"] == "no-store"
    headers = bearer(body["access_token"])
    me = anonymous.get("/api/v1/auth/me", headers=headers).json()["data"]
    assert me["username"] == "ada"
    assert me["roles"] == ["admin"]
    created = anonymous.post("/api/v1/kitchen/category", json={"name": "ada"}, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["data"]["created_by"] == me["id"]


@pytest.mark.parametrize(
    ("username", "password"), [("ada", "wrong password"), ("nobody", PASSWORD), ("ada", "")]
)
def test_wrong_credentials_get_401(anonymous: TestClient, username: str, password: str) -> None:
    response = sign_in(anonymous, username, password)
    assert response.status_code == 401
    assert response.json()["detail"] == "wrong user name or password"


@pytest.mark.parametrize(
    "body", [b"", b"[]", b'{"username": "ada"}', b'{"username": 1, "password": 2}', b"{nope"]
)
def test_malformed_sign_in_gets_400(anonymous: TestClient, body: bytes) -> None:
    response = anonymous.post("/api/v1/auth/token", content=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_failed_sign_ins_are_throttled_per_user(anonymous: TestClient) -> None:
    for _ in range(3):
        assert sign_in(anonymous, "bob", "wrong password").status_code == 401
    blocked = sign_in(anonymous, "bob", PASSWORD)
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    assert blocked.json()["type"] == "/problems/rate-limited"
    # another user from the same address is not locked out by bob's failures
    assert sign_in(anonymous, "ada", PASSWORD).status_code == 200


def test_failed_sign_ins_are_throttled_per_address(anonymous: TestClient) -> None:
    for i in range(12):  # 4x the per-user limit, spread over names that do not exist
        assert sign_in(anonymous, f"guess{i}", "wrong password").status_code == 401
    assert sign_in(anonymous, "ada", PASSWORD).status_code == 429


def test_tokens_expire(instance: Instance, anonymous: TestClient) -> None:
    token = issue_token(instance.settings.database_url, "ada", lifetime_seconds=1.0)
    assert anonymous.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
    time.sleep(1.2)
    assert anonymous.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401


def test_a_revoked_token_stops_working(instance: Instance, anonymous: TestClient) -> None:
    token = sign_in(anonymous, "bob", PASSWORD).json()["access_token"]
    assert anonymous.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
    response = anonymous.post("/api/v1/auth/revoke", headers=bearer(token))
    assert response.status_code == 204
    assert anonymous.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401

    other = issue_token(instance.settings.database_url, "bob")
    assert anonymous.get("/api/v1/auth/me", headers=bearer(other)).status_code == 200
    listed = tessera("token", "list", cwd=instance.path)
    token_id = [
        line.split()[0] for line in listed.stdout.splitlines() if "live" in line and "bob" in line
    ][-1]  # the newest: ``other``
    revoked = tessera("token", "revoke", token_id, cwd=instance.path)
    assert revoked.returncode == 0, revoked.stderr
    # token_cache_seconds is 0 here: the server re-checks, and sees the revocation
    assert anonymous.get("/api/v1/auth/me", headers=bearer(other)).status_code == 401


def test_administration_needs_the_admin_role(instance: Instance, anonymous: TestClient) -> None:
    clerk = bearer(issue_token(instance.settings.database_url, "bob"))
    admin = bearer(issue_token(instance.settings.database_url, "ada"))
    for path in ["/api/v1/_outbox"]:
        assert anonymous.get(path, headers=clerk).status_code == 403
        assert anonymous.get(path, headers=admin).status_code == 200
    change = anonymous.post(
        "/api/v1/_meta/entities/kitchen.tag/fields",
        json={"name": "nickname", "type": "string"},
        headers=clerk,
    )
    assert change.status_code == 403
    assert change.json()["type"] == "/problems/forbidden"


def test_secrets_are_stored_only_as_hashes(instance: Instance, anonymous: TestClient) -> None:
    token = sign_in(anonymous, "ada", PASSWORD).json()["access_token"]
    url = instance.settings.database_url
    users = rows(url, "SELECT username, password_hash FROM tessera_user ORDER BY id")
    assert [u[0] for u in users] == ["ada", "bob"]
    assert all(str(u[1]).startswith("$argon2id$") for u in users)
    assert all(PASSWORD not in str(u[1]) for u in users)
    stored = [str(r[0]) for r in rows(url, "SELECT token_hash FROM tessera_token")]
    assert len(stored) == 3
    assert token not in stored
    assert all(len(h) == 64 and token[4:] not in h for h in stored)


def test_a_pack_cannot_be_named_auth(tmp_path: Path) -> None:
    pack = tmp_path / "packs" / "auth"
    (pack / "entities").mkdir(parents=True)
    (pack / "module.yaml").write_text("name: auth\nversion: 1.0.0\n", encoding="utf-8")
    (pack / "entities" / "token.yaml").write_text("fields: {x: {type: string}}\n")
    (tmp_path / "tessera.yaml").write_text("modules: [auth]\nmodule_paths: [./packs]\n")
    result = tessera("validate", cwd=tmp_path)
    assert result.returncode == 1
    assert "module.yaml:1:7: 'auth' is reserved" in result.stderr + result.stdout


def test_the_openapi_document_declares_bearer_tokens(anonymous: TestClient) -> None:
    document = anonymous.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    paths = document["paths"]
    assert "security" not in paths["/api/v1/auth/token"]["post"]
    for path in ["/api/v1/kitchen/item", "/api/v1/_outbox", "/api/v1/auth/me"]:
        for operation in paths[path].values():
            assert operation["security"] == [{"bearer": []}], path
            assert "401" in operation["responses"], path


NOTES_PACK = {
    "module.yaml": "name: notes\nversion: 1.0.0\n",
    "entities/note.yaml": """\
fields:
  text:   {type: string, required: true}
  author: {type: string, default: "{{ user.username }}"}
""",
    "rules/note.yaml": """\
- name: only_the_author_edits
  on: [update, delete]
  assert: "old.created_by == user or 'admin' in user.roles"
  message: Only the author or an admin may change a note
""",
    "roles.yaml": """\
roles:
  clerk:
    grants:
      - {entity: note, actions: [read, create, update, delete]}
""",
}


def test_rules_see_the_signed_in_user(db_url: str, tmp_path: Path) -> None:
    instance = pack_instance(tmp_path, db_url, "notes", NOTES_PACK)
    ann = bearer(issue_token(db_url, "ann", ("clerk",)))
    bea = bearer(issue_token(db_url, "bea", ("clerk",)))
    boss = bearer(issue_token(db_url, "boss", ("admin",)))
    with instance.client(signed_in=False) as client:
        note = client.post("/api/v1/notes/note", json={"text": "hi"}, headers=ann).json()["data"]
        assert note["author"] == "ann"
        url = f"/api/v1/notes/note/{note['id']}"
        refused = client.patch(url, json={"text": "mine now"}, headers=bea)
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["rule"] == "only_the_author_edits"
        assert client.delete(url, headers=bea).status_code == 422
        edited = client.patch(url, json={"text": "edited"}, headers=ann).json()["data"]
        assert edited["updated_by"] == note["created_by"]
        assert client.patch(url, json={"text": "fixed"}, headers=boss).status_code == 200
        assert client.delete(url, headers=boss).status_code == 204


def test_responses_carry_security_headers(anonymous: TestClient, instance: Instance) -> None:
    admin = bearer(issue_token(instance.settings.database_url, "ada"))
    for response in [
        anonymous.get("/api/v1/kitchen/item", headers=admin),
        anonymous.get("/api/v1/kitchen/item"),
        anonymous.post("/api/v1/kitchen/item", content=b"{", headers=admin),
        anonymous.get("/api/v1/_meta/entities", headers=admin),
    ]:
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["content-security-policy"].startswith("default-src 'none'")
        assert headers["cache-control"] == "no-store"
    docs = anonymous.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["x-content-type-options"] == "nosniff"
    assert docs.headers["content-security-policy"].startswith("default-src 'self'")


def login_failures(database_url: str) -> list[tuple[str, dict[str, Any]]]:
    """The refused sign-ins in the audit trail: (user name tried, details)."""
    found = rows(
        database_url,
        "SELECT record_id, changes FROM tessera_audit WHERE action = 'login_failed' ORDER BY id",
    )
    return [
        (str(name), {k: v[1] for k, v in json.loads(str(changes)).items()})
        for name, changes in found
    ]


@contextlib.asynccontextmanager
async def served(instance: Instance) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the instance's app, in this event loop, with the app started and
    (on leaving) stopped as a server does."""
    app = build_app(instance.settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://tessera") as client:
            yield client


@pytest.mark.parametrize(
    ("body", "stored"),
    [
        (rb'{"username": "ad\u0000min", "password": "x"}', r"ad\x00min"),
        (rb'{"username": "\ud800", "password": "x"}', r"\ud800"),
        (rb'{"username": "a\udfffb\\c", "password": "correct horse battery"}', r"a\udfffb\\c"),
        (rb'{"username": "ada\n", "password": "correct horse battery"}', r"ada\n"),
        (rb'{"username": "ada", "password": "\ud800"}', "ada"),
        (rb'{"username": "ada", "password": "a\u0000\udc80"}', "ada"),
    ],
)
def test_names_and_passwords_no_user_can_have_are_failed_sign_ins(
    instance: Instance, anonymous: TestClient, body: bytes, stored: str
) -> None:
    """A NUL byte, a lone surrogate or a line break in the name or the password: 401 like
    any wrong password (never a 500: such a name is not looked up, so PostgreSQL never
    sees it), throttled like one, and audited under an escaped name."""
    for _ in range(3):
        response = anonymous.post("/api/v1/auth/token", content=body)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"] == "wrong user name or password"
    throttled = anonymous.post("/api/v1/auth/token", content=body)
    assert throttled.status_code == 429, throttled.text
    failures = login_failures(instance.settings.database_url)
    assert [name for name, _ in failures] == [stored] * 4
    assert [d["reason"] for _, d in failures] == ["wrong user name or password"] * 3 + ["throttled"]


def test_parallel_wrong_passwords_get_no_more_checks_than_the_limit(instance: Instance) -> None:
    """50 wrong passwords for one user at once: each attempt is counted before its password
    is checked, so 3 (the limit) are checked and 47 refused; the refusals are aggregated in
    the audit trail (a row when the lock starts, the rest counted and written at the
    latest when the server stops), not written one row each."""

    async def attempt_all() -> list[int]:
        async with served(instance) as client:
            attempts = [
                client.post("/api/v1/auth/token", json={"username": "bob", "password": f"no{i}"})
                for i in range(50)
            ]
            return [r.status_code for r in await asyncio.gather(*attempts)]

    codes = asyncio.run(attempt_all())
    assert sorted(codes) == [401] * 3 + [429] * 47
    failures = login_failures(instance.settings.database_url)
    checked = [d for _, d in failures if d["reason"] == "wrong user name or password"]
    refused = [d for _, d in failures if d["reason"] == "throttled"]
    assert len(checked) == 3
    assert 1 <= len(refused) <= 2, refused
    assert sum(d["refused"] for d in refused) == 47
    assert all(d["lock"] == "user" and d["address"] == "198.51.100.7" for d in refused)
    assert {name for name, _ in failures} == {"bob"}


def test_password_checks_leave_the_event_loop_free(instance: Instance) -> None:
    """Argon2 takes a good part of a second of CPU per check: it runs in threads, so the
    event loop (and ``/healthz``) keeps answering during a burst of sign-ins. Measured by a
    task that ticks every 5 ms: with the hash on the loop, one check alone would stall
    it for a whole hash."""
    candidate = SignInCandidate(None, None)
    check_password(candidate, "warm up")  # the dummy hash, made once
    started = time.perf_counter()
    check_password(candidate, "x")
    one_hash = time.perf_counter() - started

    async def burst() -> tuple[list[float], list[float], list[int]]:
        async with served(instance) as client:
            stalls: list[float] = []
            health: list[float] = []
            done = asyncio.Event()

            async def tick() -> None:
                last = time.perf_counter()
                while not done.is_set():
                    await asyncio.sleep(0.005)
                    now = time.perf_counter()
                    stalls.append(now - last - 0.005)
                    last = now

            async def healthz() -> None:
                while not done.is_set():
                    asked = time.perf_counter()
                    assert (await client.get("/healthz")).status_code == 200
                    health.append(time.perf_counter() - asked)
                    await asyncio.sleep(0.02)

            tasks = [asyncio.create_task(tick()), asyncio.create_task(healthz())]
            await asyncio.sleep(0.05)
            attempts = [
                client.post("/api/v1/auth/token", json={"username": f"u{i}", "password": "no"})
                for i in range(6)
            ]
            codes = [r.status_code for r in await asyncio.gather(*attempts)]
            done.set()
            await asyncio.gather(*tasks)
            return stalls, health, codes

    stalls, health, codes = asyncio.run(burst())
    assert codes == [401] * 6
    # on the loop, six checks would stall it for six whole hashes, one after the other; in
    # threads no stall reaches one hash even when other processes keep both cores busy
    assert max(stalls) < one_hash, (max(stalls), one_hash)
    assert len(health) >= 3
    assert max(health) < one_hash, (health, one_hash)

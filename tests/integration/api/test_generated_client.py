"""A client generated from a running instance's OpenAPI document works.

API clients are one of the platform's kinds of users, and most start from a generated
client: openapi-python-client (a dev dependency) generates one from ``/openapi.json`` of a
real ``tessera serve`` with three packs (two of them with a ``category`` entity), and the
generated functions and models create, patch, upsert, list and read records through it.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import REPO, TEST_PACKS, write_instance
from tests.support.server import serving

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import ModuleType

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
PACKS = ["kitchen", "northwind", "contacts"]


def _generate(document: dict[str, Any], folder: Path) -> tuple[str, str]:
    """Generate a client package of ``document`` in ``folder``; its name and the output."""
    name = f"generated_{uuid.uuid4().hex[:8]}"
    (folder / "openapi.json").write_text(json.dumps(document), encoding="utf-8")
    result = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(folder / "openapi.json"),
            "--output-path",
            str(folder / name),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=folder,
        # it formats the code with ruff, found on PATH
        env={**os.environ, "PATH": f"{GENERATOR.parent}{os.pathsep}{os.environ['PATH']}"},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return name, output


def _imported(folder: Path, package: str) -> Iterator[Callable[[str], ModuleType]]:
    sys.path.insert(0, str(folder))
    try:
        yield lambda module: importlib.import_module(f"{package}.{module}")
    finally:
        sys.path.remove(str(folder))
        for module in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[module]


@pytest.mark.slow  # generates a client package with openapi-python-client, then serves
def test_a_generated_client_creates_patches_upserts_lists_and_reads(
    db_url: str, tmp_path: Path
) -> None:
    instance = write_instance(tmp_path / "instance", db_url, PACKS, [TEST_PACKS, REPO / "modules"])
    instance.migrate()
    token = instance.token()
    with serving(instance.path) as base:
        document = httpx.get(f"{base}/openapi.json", timeout=30).json()
        package, output = _generate(document, tmp_path)
        assert "Warning" not in output, output
        assert "will not be generated" not in output, output

        # every operation of the document is a function of the client (snake_case)
        generated = {path.stem for path in (tmp_path / package / "api").glob("*/*.py")}
        operations = {
            re.sub("_+", "_", operation["operationId"])
            for item in document["paths"].values()
            for operation in item.values()
            if isinstance(operation, dict) and "operationId" in operation
        }
        assert operations - generated == set()

        modules = _imported(tmp_path, package)
        use = next(modules)
        try:
            _use_the_client(use, base, token)
        finally:
            modules.close()


def _use_the_client(use: Callable[[str], ModuleType], base: str, token: str) -> None:
    models = use("models")

    def call(tag: str, operation: str, **kwargs: Any) -> Any:
        response = use(f"api.{tag}.{operation}").sync_detailed(client=client, **kwargs)
        assert response.status_code < 300, (operation, response.status_code, response.content)
        return response

    with use("client").AuthenticatedClient(base_url=base, token=token) as client:
        # the same entity name in two packs: two models, two sets of functions
        kitchen = call(
            "categorys",
            "create_kitchen_category",
            body=models.KitchenCategoryCreate(name="Tools"),
        ).parsed.data
        northwind = call(
            "categories",
            "create_northwind_category",
            body=models.NorthwindCategoryCreate(northwind_id=1, name="Tools"),
        ).parsed.data
        assert isinstance(kitchen, models.KitchenCategory)
        assert isinstance(northwind, models.NorthwindCategory)

        created = call(
            "items",
            "create_kitchen_item",
            body=models.KitchenItemCreate(
                name="Saw",
                code="SW-1",
                price="12.50",
                category=kitchen.id,
                lines=[models.KitchenItemLineInput(description="blade", qty=2)],
            ),
        )
        assert created.status_code == 201
        item = created.parsed.data
        assert (item.name, item.price, item.version) == ("Saw", "12.50", 1)
        assert item.lines[0].description == "blade"

        patched = call(
            "items",
            "update_kitchen_item",
            id=item.id,
            body=models.KitchenItemPatch(quantity=5, status=models.KitchenItemPatchStatus.OPEN),
            if_match=f'"{item.version}"',
        ).parsed.data
        assert (patched.quantity, patched.status, patched.version) == (5, "open", 2)

        field = models.UpsertKitchenItemField.CODE
        updated = call(
            "items",
            "upsert_kitchen_item",
            field=field,
            value="SW-1",
            body=models.KitchenItemUpsert(notes="sharp"),
        )
        assert updated.status_code == 200
        assert updated.parsed.data.id == item.id
        new = call(
            "items",
            "upsert_kitchen_item",
            field=field,
            value="HM-1",
            body=models.KitchenItemUpsert(name="Hammer"),
        )
        assert new.status_code == 201
        assert new.parsed.data.code == "HM-1"

        page = call("items", "list_kitchen_item", sort="-code", count=True).parsed
        assert [i.code for i in page.data] == ["SW-1", "HM-1"]
        assert page.meta.count == 2

        read = call("items", "get_kitchen_item", id=item.id, expand="category").parsed.data
        assert read.notes == "sharp"
        assert isinstance(read.category, models.KitchenCategory)
        assert read.category.name == "Tools"

        account = call(
            "accounts",
            "upsert_contacts_account",
            field=models.UpsertContactsAccountField.NAME,
            value="Nordwind Handels GmbH",
            body=models.ContactsAccountUpsert(employees=40),
        )
        assert account.status_code == 201
        many = call(
            "categorys",
            "bulk_kitchen_category",
            body=[models.KitchenCategoryCreate(name=n) for n in ("Garden", "Paint")],
        ).parsed
        assert [c.name for c in many.data] == ["Garden", "Paint"]
        history = call("items", "history_kitchen_item", id=item.id).parsed
        assert [e.action for e in history.data] == ["create", "update", "update"]

"""The ``tessera`` command as a user runs it, against a real database: in this process
(click's runner, tests/support/cli.py), and as a real subprocess where the process matters."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from sqlalchemy import inspect, select

from cli.main import main
from engine.migrate import sync_engine
from engine.tables import migration_log_table
from runtime.settings import Settings
from tests.conftest import REPO, TEST_PACKS
from tests.support.cli import tessera, tessera_process

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path


def run(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = tessera(*args, cwd=cwd, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"tessera {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def instance_dir(tmp_path: Path, db_url: str) -> Path:
    folder = tmp_path / "acme"
    run("init", str(folder), "--modules", "kitchen", "--database-url", db_url, cwd=tmp_path)
    config = yaml.safe_load((folder / "tessera.yaml").read_text())
    config["module_paths"] = [str(TEST_PACKS)]
    (folder / "tessera.yaml").write_text(yaml.safe_dump(config))
    return folder


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    run("init", str(tmp_path / "x"), cwd=tmp_path)
    config = (tmp_path / "x" / "tessera.yaml").read_text()
    assert "secret_key:" in config
    assert "database_url: sqlite:///tessera.db" in config
    # a real process: the entry point, its exit status and its stderr
    again = tessera_process("init", str(tmp_path / "x"), cwd=tmp_path)
    assert again.returncode == 1
    assert "already exists" in again.stderr


def test_validate_reports_every_problem_with_position(tmp_path: Path) -> None:
    case = REPO / "tests" / "fixtures" / "broken" / "typos"
    (tmp_path / "tessera.yaml").write_text(
        yaml.safe_dump({"modules": ["crm"], "module_paths": [str(case / "packs")]})
    )
    result = run("validate", cwd=tmp_path, check=False)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if ".yaml:" in line]
    assert len(lines) == 4
    assert lines[0].endswith("account.yaml:4:24: unknown key 'lable'; did you mean 'label'?")


def test_validate_reports_every_file_despite_failed_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files that fail (not YAML, schema broken) do not hide the problems of the others, nor
    cause follow-on ones: one run, exit 1, every line of the case's list and nothing else."""
    case = REPO / "tests" / "fixtures" / "broken" / "failed_files"
    spec = yaml.safe_load((case / "case.yaml").read_text("utf-8"))
    config = tmp_path / "tessera.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "modules": spec["modules"],
                "module_paths": [str(case / "packs")],
                "customizations": str(case / "custom"),
            }
        )
    )
    monkeypatch.chdir(case)  # file names as the case lists them
    result = CliRunner().invoke(main, ["validate", "--config", str(config)])  # in-process
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert lines == [*spec["expect"], f"{len(spec['expect'])} problems in the definitions"]
    assert result.stdout == ""


def test_schema_prints_valid_draft_2020_12_schemas(tmp_path: Path) -> None:
    document = json.loads(run("schema", cwd=tmp_path).stdout)
    assert set(document) == {
        "module",
        "entity",
        "rules",
        "form",
        "workflow",
        "fixture",
        "overlay",
        "dashboard",
        "view",
        "report",
    }
    for schema in document.values():
        Draft202012Validator.check_schema(schema)
    entity = json.loads(run("schema", "--kind", "entity", cwd=tmp_path).stdout)
    assert "string" in entity["$defs"]["field"]["properties"]["type"]["enum"]


def test_migrate_dry_run_then_apply(instance_dir: Path) -> None:
    dry = run("migrate", "--dry-run", cwd=instance_dir)
    assert "create table kitchen_item" in dry.stdout
    assert "CREATE TABLE kitchen_item" in dry.stdout
    assert "nothing was changed" in dry.stdout
    assert _migration_log(instance_dir) == []
    assert "create table kitchen_item" in run("migrate", cwd=instance_dir).stdout
    assert "database is up to date" in run("migrate", cwd=instance_dir).stdout
    (logged,) = _migration_log(instance_dir)
    assert "create table kitchen_item" in logged.plan
    assert "CREATE TABLE kitchen_item" in logged.plan
    assert len(logged.definitions_hash) == 64
    assert logged.applied_by
    assert run("validate", cwd=instance_dir).stdout.startswith("ok: 1 packs, 4 entities")


def _migration_log(instance_dir: Path) -> list[Any]:
    settings = Settings.load(instance_dir / "tessera.yaml")
    engine = sync_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            if "tessera_migration" not in inspect(connection).get_table_names():
                return []
            return list(connection.execute(select(migration_log_table)))
    finally:
        engine.dispose()


def test_openapi_lists_every_generated_endpoint(instance_dir: Path) -> None:
    document = json.loads(run("openapi", cwd=instance_dir).stdout)
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    for path in (
        "/api/v1/kitchen/item",
        "/api/v1/kitchen/item/{id}",
        "/api/v1/kitchen/item/_bulk",
        "/api/v1/kitchen/item/by/{field}/{value}",
    ):
        assert path in paths
    assert "/api/v1/kitchen/item_line" not in paths
    assert "KitchenItemCreate" in document["components"]["schemas"]


def test_import_reports_bad_lines_and_keeps_good_ones(instance_dir: Path) -> None:
    run("migrate", cwd=instance_dir)
    categories = instance_dir / "categories.jsonl"
    categories.write_text('{"name": "Tools"}\n{"name": "Garden", "parent": {"name": "Tools"}}\n')
    assert (
        "2 created" in run("import", "kitchen.category", str(categories), cwd=instance_dir).stdout
    )
    items = instance_dir / "items.csv"
    items.write_text(
        "name,code,price,category.name,due\n"
        "Hammer,HM-1,12.50,Tools,2026-01-31\n"
        "Rake,RK-1,abc,Garden,\n"
        "Spade,SP-1,7.25,Nowhere,\n"
        "Saw,SW-1,3.00,,2026-02-30\n"
        "Émile's trowel,TR-1,1.10,Garden,\n",
        encoding="utf-8",
    )
    result = run("import", "kitchen.item", str(items), cwd=instance_dir, check=False)
    assert result.returncode == 1
    assert "kitchen.item: 2 created, 0 updated, 3 rejected" in result.stdout
    errors = [line for line in result.stderr.splitlines() if "items.csv:" in line]
    assert [e.split("items.csv:")[1].split(":")[0] for e in errors] == ["3", "4", "5"]
    assert "price: must be a decimal number" in errors[0]
    assert "no kitchen.category record with name = 'Nowhere'" in errors[1]
    update = instance_dir / "update.csv"
    update.write_text("code,name,price\nHM-1,Hammer XL,13.00\nNW-1,New,1.00\n")
    assert (
        "1 created, 1 updated, 0 rejected"
        in run("import", "kitchen.item", str(update), "--key", "code", cwd=instance_dir).stdout
    )

    exported = run("export", "kitchen.item", "--format", "jsonl", cwd=instance_dir).stdout
    records = [json.loads(line) for line in exported.splitlines()]
    assert [(r["code"], r["name"], r["price"]) for r in records] == [
        ("HM-1", "Hammer XL", "13.00"),
        ("TR-1", "Émile's trowel", "1.10"),
        ("NW-1", "New", "1.00"),
    ]
    csv_lines = run("export", "kitchen.item", cwd=instance_dir).stdout.splitlines()
    assert csv_lines[0].startswith("id,name,code,notes,quantity,price")
    assert len(csv_lines) == 4


def test_import_of_unknown_entity_or_key_fails_cleanly(instance_dir: Path) -> None:
    data = instance_dir / "x.jsonl"
    data.write_text("{}\n")
    unknown = run("import", "kitchen.nothing", str(data), cwd=instance_dir, check=False)
    assert unknown.returncode == 1
    assert "no entity 'kitchen.nothing'" in unknown.stderr
    bad_key = run(
        "import", "kitchen.item", str(data), "--key", "name", cwd=instance_dir, check=False
    )
    assert bad_key.returncode == 1
    assert "not a unique field" in bad_key.stderr
    assert "Traceback" not in unknown.stderr + bad_key.stderr


def test_validate_checks_fixture_files(tmp_path: Path) -> None:
    packs = tmp_path / "packs"
    (packs / "shop" / "entities").mkdir(parents=True)
    (packs / "shop" / "demo").mkdir()
    (packs / "shop" / "module.yaml").write_text('name: shop\nversion: "1.0.0"\n')
    (packs / "shop" / "entities" / "product.yaml").write_text(
        "fields:\n  sku: {type: string, unique: true}\n  name: {type: string}\n"
    )
    (packs / "shop" / "demo" / "product.yaml").write_text("key: name\nrecords: []\n")
    (packs / "shop" / "demo" / "prodcut.yaml").write_text("key: sku\nrecords: []\n")
    (tmp_path / "tessera.yaml").write_text(
        yaml.safe_dump({"modules": ["shop"], "module_paths": [str(packs)]})
    )
    result = run("validate", cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert (
        "demo/product.yaml:1:6: key 'name' is not a unique field of shop.product" in result.stderr
    )
    assert (
        "demo/prodcut.yaml:1:1: no entity 'shop.prodcut'; did you mean 'product'?" in result.stderr
    )

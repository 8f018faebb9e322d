"""``tessera module`` over a pack's life: list, install with dependencies, upgrade with a
customization in place, idempotent fixtures, refused downgrade; and ``tessera migrate``'s
refusals as a user sees them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml
from sqlalchemy import text

from engine.migrate import sync_engine
from runtime.settings import Settings
from tests.support.cli import tessera

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path


def run(*args: str, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    result = tessera(*args, cwd=cwd, timeout=120)
    if ok and result.returncode != 0:
        raise AssertionError(f"tessera {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    if not ok:
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
    return result


def write_pack(root: Path, name: str, version: str, entities: dict[str, Any], **extra: Any) -> None:
    pack = root / name
    (pack / "entities").mkdir(parents=True, exist_ok=True)
    (pack / "module.yaml").write_text(yaml.safe_dump({"name": name, "version": version, **extra}))
    for entity, definition in entities.items():
        (pack / "entities" / f"{entity}.yaml").write_text(yaml.safe_dump(definition))


def write_fixtures(root: Path, pack: str, entity: str, key: str, records: list[Any]) -> None:
    (root / pack / "data").mkdir(exist_ok=True)
    (root / pack / "data" / f"{entity}.yaml").write_text(
        yaml.safe_dump({"key": key, "records": records})
    )


COUNTRY = {
    "fields": {
        "code": {"type": "string", "unique": True, "required": True},
        "name": {"type": "string"},
    }
}
LEAD = {
    "fields": {
        "name": {"type": "string", "required": True},
        "country": {"type": "reference", "to": "base.country"},
    }
}
STAGES = {"fields": {"code": {"type": "string", "unique": True}, "label": {"type": "string"}}}


def listed(folder: Path) -> dict[str, list[str]]:
    lines = run("module", "list", cwd=folder).stdout.splitlines()
    assert lines[0].split() == ["NAME", "INSTALLED", "AVAILABLE", "STATE"]
    return {line.split()[0]: line.split(None, 3)[1:] for line in lines[1:]}


def query(folder: Path, sql: str) -> list[Any]:
    engine = sync_engine(Settings.load(folder / "tessera.yaml").database_url)
    with engine.connect() as connection:
        rows = list(connection.execute(text(sql)))
    engine.dispose()
    return rows


def execute(folder: Path, sql: str) -> None:
    engine = sync_engine(Settings.load(folder / "tessera.yaml").database_url)
    with engine.begin() as connection:
        connection.execute(text(sql))
    engine.dispose()


def test_install_upgrade_and_refused_downgrade(tmp_path: Path, db_url: str) -> None:
    packs = tmp_path / "packs"
    write_pack(packs, "base", "1.0.0", {"country": COUNTRY})
    write_fixtures(packs, "base", "country", "code", [{"code": "FR", "name": "France"}])
    write_pack(packs, "crm", "1.0.0", {"lead": LEAD, "stage": STAGES}, depends=["base"])
    write_fixtures(packs, "crm", "stage", "code", [{"code": "new", "label": "New"}])
    folder = tmp_path / "acme"
    run("init", str(folder), "--modules", "base", "--database-url", db_url, cwd=tmp_path)
    config = folder / "tessera.yaml"
    config.write_text(
        config.read_text().replace(
            "module_paths: [./packs]", f"module_paths: [{packs}]  # our packs"
        )
    )

    assert listed(folder)["base"] == ["-", "1.0.0", "enabled, not migrated yet"]
    assert listed(folder)["crm"] == ["-", "1.0.0", "available"]

    run("migrate", cwd=folder)
    assert listed(folder)["base"] == ["1.0.0", "1.0.0", "installed"]

    dry = run("module", "install", "crm", "--dry-run", cwd=folder).stdout
    assert "install crm 1.0.0" in dry
    assert "create table crm_lead" in dry
    assert "CREATE TABLE crm_lead" in dry
    assert "crm" not in yaml.safe_load(config.read_text())["modules"]
    assert query(folder, "SELECT count(*) FROM tessera_table WHERE name = 'crm_lead'") == [(0,)]

    run("module", "install", "crm", "--yes", cwd=folder)
    assert yaml.safe_load(config.read_text())["modules"] == ["base", "crm"]
    assert "# our packs" in config.read_text()
    assert query(folder, "SELECT code, label FROM crm_stage") == [("new", "New")]
    assert listed(folder)["crm"] == ["1.0.0", "1.0.0", "installed"]

    # An admin customizes the lead; then the pack upgrades underneath with a new field.
    custom = folder / "custom" / "crm"
    custom.mkdir(parents=True)
    (custom / "lead.yaml").write_text("fields:\n  score: {type: integer, min: 0}\n")
    run("migrate", cwd=folder)
    execute(
        folder,
        "INSERT INTO crm_lead (name, score, created_at, updated_at) VALUES "
        "('Ada', 7, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP), "
        "('Bob', NULL, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    )
    upgraded_lead = {"fields": {**LEAD["fields"], "source": {"type": "string", "default": "web"}}}
    write_pack(packs, "crm", "1.1.0", {"lead": upgraded_lead, "stage": STAGES}, depends=["base"])
    write_fixtures(
        packs,
        "crm",
        "stage",
        "code",
        [{"code": "new", "label": "New lead"}, {"code": "won", "label": "Won"}],
    )
    assert listed(folder)["crm"] == ["1.0.0", "1.1.0", "upgrade available"]
    upgrade = run("module", "upgrade", "crm", "--yes", cwd=folder).stdout
    assert "upgrade crm 1.0.0 -> 1.1.0" in upgrade
    assert "add column crm_lead.source" in upgrade
    lead_columns = _columns(folder, "crm_lead")
    assert {"score", "source"} <= lead_columns
    assert query(folder, "SELECT name, score, source FROM crm_lead ORDER BY name") == [
        ("Ada", 7, "web"),
        ("Bob", None, "web"),
    ]
    assert query(folder, "SELECT code, label FROM crm_stage ORDER BY code") == [
        ("new", "New lead"),
        ("won", "Won"),
    ]
    again = run("module", "upgrade", "--yes", cwd=folder).stdout
    assert "every pack is at its installed version" in again
    assert query(folder, "SELECT count(*) FROM crm_stage") == [(2,)]

    write_pack(packs, "crm", "1.0.9", {"lead": upgraded_lead, "stage": STAGES}, depends=["base"])
    refused = run("module", "upgrade", cwd=folder, ok=False)
    assert "pack 'crm' 1.0.9 is older than the installed 1.1.0" in refused.stderr
    refused = run("migrate", cwd=folder, ok=False)
    assert "downgrading a pack is not supported" in refused.stderr

    missing = run("module", "install", "crn", cwd=folder, ok=False)
    assert "no module pack 'crn' on the module paths; did you mean 'crm'?" in missing.stderr

    # A pack whose fixtures are keyed by a field that is not unique is stopped before the
    # database is touched.
    write_pack(packs, "notes", "0.1.0", {"note": {"fields": {"title": {"type": "string"}}}})
    write_fixtures(packs, "notes", "note", "title", [{"title": "Welcome"}])
    broken = run("module", "install", "notes", "--yes", cwd=folder, ok=False)
    assert "data/note.yaml:1:6: key 'title' is not a unique field of notes.note" in broken.stderr
    assert "notes_note" not in tables(folder)
    assert "notes" not in yaml.safe_load(config.read_text())["modules"]


def tables(folder: Path) -> set[str]:
    from sqlalchemy import inspect

    engine = sync_engine(Settings.load(folder / "tessera.yaml").database_url)
    with engine.connect() as connection:
        names = set(inspect(connection).get_table_names())
    engine.dispose()
    return names


def _columns(folder: Path, table: str) -> set[str]:
    from sqlalchemy import inspect

    engine = sync_engine(Settings.load(folder / "tessera.yaml").database_url)
    with engine.connect() as connection:
        names = {c["name"] for c in inspect(connection).get_columns(table)}
    engine.dispose()
    return names


def test_migrate_refuses_destructive_steps_until_allowed(tmp_path: Path, db_url: str) -> None:
    packs = tmp_path / "packs"
    write_pack(packs, "base", "1.0.0", {"country": COUNTRY})
    write_fixtures(packs, "base", "country", "code", [{"code": "FR", "name": "France"}])
    folder = tmp_path / "acme"
    run("init", str(folder), "--modules", "base", "--database-url", db_url, cwd=tmp_path)
    config = folder / "tessera.yaml"
    config.write_text(config.read_text().replace("./packs", str(packs)))
    run("migrate", cwd=folder)
    write_pack(packs, "base", "1.1.0", {"country": {"fields": {"code": COUNTRY["fields"]["code"]}}})
    write_fixtures(packs, "base", "country", "code", [{"code": "FR"}])
    refused = run("migrate", cwd=folder, ok=False)
    assert "REFUSED drop column base_country.name (1 values)" in refused.stdout
    assert "refused without --allow-data-loss" in refused.stdout
    assert "migration refused; nothing was changed" in refused.stderr
    assert "name" in _columns(folder, "base_country")
    dry = run("migrate", "--dry-run", "--allow-data-loss", cwd=folder).stdout
    # PostgreSQL drops in place; SQLite copies the table without the column (batch mode).
    assert "DROP COLUMN name" in dry or "INSERT INTO _alembic_tmp_base_country" in dry
    assert "name" in _columns(folder, "base_country")
    run("migrate", "--allow-data-loss", cwd=folder)
    assert "name" not in _columns(folder, "base_country")
    assert query(folder, "SELECT code FROM base_country") == [("FR",)]

"""Changing an instance's customizations while it serves: edit the overlay file, load the
definitions, migrate, and keep all three consistent.

The steps run under an exclusive lock on the customizations folder, shared by every
process of the instance, so two admins never interleave edits and migrations. If the edited
definitions do not load, or the migration is refused or fails, the overlay file gets its
previous bytes back: a rejected change leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import fcntl
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.migrate import (
    MigrationFailed,
    MigrationRefused,
    latest_migration_id,
    run_migration,
    sync_engine,
)
from engine.tables import build_tables
from metadata import DefinitionError, DefinitionProblem
from metadata.fingerprint import definitions_hash
from runtime.live import load_definitions

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from engine.migrate import Plan
    from metadata import ProjectDef
    from runtime.settings import Settings


class CustomizationRejected(Exception):
    """The change was undone; ``reasons`` say why (migration refusals or failures)."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("\n".join(reasons))
        self.reasons = reasons


@dataclass(frozen=True, slots=True)
class AppliedChange:
    project: ProjectDef
    plan: Plan
    generation: int


def overlay_path(settings: Settings, pack: str, entity: str) -> Path:
    if settings.customizations is None:
        raise CustomizationRejected(
            ["this instance has no customizations folder; set 'customizations' in tessera.yaml"]
        )
    return settings.customizations / pack / f"{entity}.yaml"


@contextlib.contextmanager
def _instance_lock(settings: Settings) -> Iterator[None]:
    assert settings.customizations is not None
    settings.customizations.mkdir(parents=True, exist_ok=True)
    with (settings.customizations / ".tessera.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def apply_change(
    settings: Settings,
    overlay: Path,
    edit: Callable[[], None],
    *,
    allow_data_loss: bool = False,
    applied_by: str = "meta-api",
) -> AppliedChange:
    """Edit, load, migrate; on any failure restore the overlay file and re-raise.

    Raises ``DefinitionError`` (the edit made the definitions invalid),
    ``CustomizationRejected`` (the migration was refused or failed) or the editor's error.
    """
    with _instance_lock(settings):
        previous = overlay.read_bytes() if overlay.exists() else None
        try:
            edit()
            project = load_definitions(settings)
            plan = run_migration(
                settings.database_url,
                build_tables(project),
                allow_data_loss=allow_data_loss,
                applied_by=applied_by,
                definitions_hash=definitions_hash(project, settings.customizations),
                module_versions={m.name: m.version for m in project.modules.values()},
            )
            if plan.refused:
                raise CustomizationRejected(plan.reasons(permission="allow_data_loss=true"))
        except (MigrationRefused, MigrationFailed) as exc:
            _restore(overlay, previous)
            raise CustomizationRejected(str(exc).splitlines()) from exc
        except BaseException:
            _restore(overlay, previous)
            raise
        engine = sync_engine(settings.database_url)
        try:
            with engine.connect() as connection:
                generation = latest_migration_id(connection)
        finally:
            engine.dispose()
        return AppliedChange(project, plan, generation)


@dataclass(frozen=True, slots=True)
class Preview:
    """What a change would do: the overlay file's diff and the migration plan."""

    diff: str
    plan: Plan


def preview_change(settings: Settings, overlay: Path, edit: Callable[[Path], None]) -> Preview:
    """Make the change on a copy of the customizations folder, load the definitions from
    it and rehearse the migration (a dry run): nothing of the instance changes.

    Raises ``DefinitionError`` (with the real file names) or the editor's error."""
    customizations = settings.customizations
    if customizations is None:
        raise CustomizationRejected(
            ["this instance has no customizations folder; set 'customizations' in tessera.yaml"]
        )
    relative = overlay.relative_to(customizations)
    with _instance_lock(settings), tempfile.TemporaryDirectory(prefix="tessera-") as scratch:
        trial_folder = Path(scratch) / customizations.name
        if customizations.is_dir():
            shutil.copytree(customizations, trial_folder, ignore=shutil.ignore_patterns(".*"))
        trial = trial_folder / relative
        before = trial.read_text(encoding="utf-8") if trial.exists() else ""
        edit(trial)
        after = trial.read_text(encoding="utf-8")
        trial_settings = dataclasses.replace(settings, customizations=trial_folder)
        try:
            project = load_definitions(trial_settings)
        except DefinitionError as exc:
            raise DefinitionError(
                [
                    _moved(problem, str(trial_folder), str(customizations))
                    for problem in exc.problems
                ]
            ) from None
        try:
            plan = run_migration(
                settings.database_url,
                build_tables(project),
                dry_run=True,
                applied_by="designer preview",
                definitions_hash=definitions_hash(project, trial_folder),
                module_versions={m.name: m.version for m in project.modules.values()},
            )
        except (MigrationRefused, MigrationFailed) as exc:
            raise CustomizationRejected(str(exc).splitlines()) from exc
    diff = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        f"{customizations.name}/{relative} (now)",
        f"{customizations.name}/{relative} (after)",
    )
    return Preview("".join(diff), plan)


def _moved(problem: DefinitionProblem, trial: str, real: str) -> DefinitionProblem:
    return dataclasses.replace(problem, file=problem.file.replace(trial, real))


def _restore(overlay: Path, previous: bytes | None) -> None:
    if previous is None:
        overlay.unlink(missing_ok=True)
    else:
        overlay.write_bytes(previous)

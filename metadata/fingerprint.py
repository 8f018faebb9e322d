"""A hash of every definition file in force (the enabled packs and the customizations), to
tell which definitions a database was migrated to and whether they changed since."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from metadata._model import ProjectDef

_YAML = {".yaml", ".yml"}


def definitions_hash(project: ProjectDef, customizations: Path | None = None) -> str:
    digest = hashlib.sha256()
    for module in sorted(project.modules.values(), key=lambda m: m.name):
        _add_files(digest, module.name, module.path)
    if customizations is not None and customizations.is_dir():
        for name in sorted(project.modules):
            if (customizations / name).is_dir():
                _add_files(digest, f"customizations/{name}", customizations / name)
    return digest.hexdigest()


def _add_files(digest: hashlib._Hash, label: str, folder: Path) -> None:
    for path in sorted(p for p in folder.rglob("*") if p.suffix in _YAML):
        digest.update(f"{label}/{path.relative_to(folder).as_posix()}\0".encode())
        digest.update(path.read_bytes())
        digest.update(b"\0")

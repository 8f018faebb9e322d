"""A hash of every definition file of the enabled packs, to tell which definitions a
database was migrated to."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from metadata._model import ProjectDef


def definitions_hash(project: ProjectDef) -> str:
    digest = hashlib.sha256()
    for module in sorted(project.modules.values(), key=lambda m: m.name):
        files = sorted(p for p in module.path.rglob("*") if p.suffix in {".yaml", ".yml"})
        for path in files:
            digest.update(f"{module.name}/{path.relative_to(module.path).as_posix()}\0".encode())
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()

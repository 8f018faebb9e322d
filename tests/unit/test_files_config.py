"""``files:`` in tessera.yaml: defaults, sizes, content types, a storage class named by
``module:Class`` (a second store passing the contract), and every mistake at the file."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import yaml

from engine.files import FileStorage, FolderStorage, MemoryStorage
from metadata import DefinitionError
from runtime.settings import Settings

if TYPE_CHECKING:
    from pathlib import Path


def _settings(tmp_path: Path, files: object) -> Settings:
    config = tmp_path / "tessera.yaml"
    config.write_text(yaml.safe_dump({"modules": [], "files": files}), encoding="utf-8")
    return Settings.load(config)


def test_defaults(tmp_path: Path) -> None:
    config = tmp_path / "tessera.yaml"
    config.write_text("modules: []\n", encoding="utf-8")
    files = Settings.load(config).files
    assert files.max_size == 10_000_000
    assert files.content_types is None
    store = files.store()
    assert isinstance(store, FolderStorage)
    assert store.root == tmp_path.resolve() / "files"
    assert files.store() is store  # one per process


def test_keys_are_read(tmp_path: Path) -> None:
    files = _settings(
        tmp_path,
        {"storage": "memory", "max_size": "2MiB", "content_types": ["image/*"], "path": "up"},
    ).files
    assert files.max_size == 2 * 1024**2
    assert files.content_types == ("image/*",)
    assert isinstance(files.store(), MemoryStorage)


def test_a_storage_class_by_name(tmp_path: Path) -> None:
    files = _settings(tmp_path, {"storage": "engine.files.storage:MemoryStorage"}).files
    assert isinstance(files.store(), FileStorage)
    unusable = _settings(tmp_path, {"storage": "pathlib:PurePath"}).files
    with pytest.raises(TypeError, match="lacks put, open, delete or exists"):
        unusable.store()
    unknown = _settings(tmp_path, {"storage": "s3"}).files
    with pytest.raises(LookupError, match="no storage named 's3'"):
        unknown.store()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ("big", "expected a mapping"),
        ({"size": 1}, "unknown key(s): size"),
        ({"max_size": "huge"}, "'max_size' must be a size"),
        ({"max_size": 0}, "'max_size' must be a size"),
        ({"content_types": "image/*"}, "'content_types' must be a list"),
        ({"content_types": ["png"]}, "'png' is not a content type"),
        ({"storage": ""}, "'storage' must be"),
        ({"path": "a\x00b"}, "'path' must be a folder name"),
        ({"options": ["x"]}, "'options' must be a mapping"),
    ],
)
def test_mistakes(tmp_path: Path, files: object, message: str) -> None:
    with pytest.raises(DefinitionError) as failed:
        _settings(tmp_path, files)
    text = str(failed.value)
    assert "tessera.yaml:1:1: files: " in text
    assert message in text

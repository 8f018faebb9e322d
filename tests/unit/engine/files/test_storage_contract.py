"""Every file store passes the same contract: the folder store and the memory store here;
a third-party store (S3-compatible) can run these tests against itself."""

from __future__ import annotations

import asyncio
import hashlib
from typing import TYPE_CHECKING

import pytest

from engine.files import FileMissing, FileStorage, FileTooLarge, FolderStorage, MemoryStorage

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


@pytest.fixture(params=["folder", "memory"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> FileStorage:
    if request.param == "folder":
        return FolderStorage(tmp_path / "files")
    return MemoryStorage()


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _read(storage: FileStorage, key: str) -> bytes:
    return b"".join([chunk async for chunk in storage.open(key)])


def test_is_a_file_storage(storage: FileStorage) -> None:
    assert isinstance(storage, FileStorage)


def test_put_open_delete(storage: FileStorage) -> None:
    async def run() -> None:
        data = [b"hello ", b"world" * 30_000]
        blob = await storage.put(_chunks(*data), max_size=10**6)
        whole = b"".join(data)
        assert blob.size == len(whole)
        assert blob.sha256 == hashlib.sha256(whole).hexdigest()
        assert blob.head == whole[:8192]
        assert await storage.exists(blob.key)
        assert await _read(storage, blob.key) == whole
        other = await storage.put(_chunks(b"x"), max_size=1)
        assert other.key != blob.key
        await storage.delete(blob.key)
        assert not await storage.exists(blob.key)
        with pytest.raises(FileMissing):
            await _read(storage, blob.key)
        await storage.delete(blob.key)  # twice: no error
        assert await _read(storage, other.key) == b"x"

    asyncio.run(run())


def test_too_large_keeps_nothing(storage: FileStorage, tmp_path: Path) -> None:
    read: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for n in range(1000):
            read.append(n)
            yield b"0" * 1000

    async def run() -> None:
        with pytest.raises(FileTooLarge):
            await storage.put(endless(), max_size=5000)

    asyncio.run(run())
    assert len(read) == 6  # stopped where the limit was crossed
    if isinstance(storage, MemoryStorage):
        assert storage.blobs == {}
    else:
        assert [p for p in (tmp_path / "files").rglob("*") if p.is_file()] == []


def test_keys_from_outside_are_not_paths(tmp_path: Path) -> None:
    storage = FolderStorage(tmp_path / "files")
    (tmp_path / "secret").write_text("s")

    async def run() -> None:
        for key in ("../secret", "../../etc/passwd", "ab/../../secret", "/etc/passwd", ""):
            assert not await storage.exists(key)
            with pytest.raises(FileMissing):
                await _read(storage, key)
            await storage.delete(key)

    asyncio.run(run())
    assert (tmp_path / "secret").exists()


def test_an_empty_file(storage: FileStorage) -> None:
    async def run() -> None:
        blob = await storage.put(_chunks(), max_size=10)
        assert blob.size == 0
        assert await _read(storage, blob.key) == b""

    asyncio.run(run())

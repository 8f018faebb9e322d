"""Where uploaded files' bytes live: a small storage interface and its folder implementation.

The engine and the API see only :class:`FileStorage`: put a stream and get back a key, open
a key, delete it, ask whether it exists. The key is chosen by the storage (random, never
built from a file name or anything else a client sent), so no upload can name a path. The
folder store is the default; an S3-compatible store (or any other) is a class implementing
the same four methods, named in ``tessera.yaml`` (``files: {storage: pkg.module:Class}``,
docs/files.md). ``MemoryStorage`` passes the same contract tests and serves tests and
throw-away instances.

Every ``put`` counts the bytes and computes their SHA-256 while they stream through, and
refuses a stream longer than ``max_size`` with :class:`FileTooLarge` once the limit is
crossed, before the rest is read, leaving nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import anyio
import anyio.to_thread

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, AsyncIterator
    from pathlib import Path

HEAD_BYTES = 8192
"""How much of the start of a file a put keeps for content-type sniffing."""
CHUNK = 64 * 1024


class FileTooLarge(Exception):
    """The stream was longer than the ``max_size`` given to ``put``; nothing was stored."""

    def __init__(self, max_size: int) -> None:
        super().__init__(f"the file is larger than {max_size} bytes")
        self.max_size = max_size


class FileMissing(Exception):
    """No stored file has this key (deleted, or never stored)."""


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """What a ``put`` stored: its key, length, SHA-256 (hex) and first bytes."""

    key: str
    size: int
    sha256: str
    head: bytes


@runtime_checkable
class FileStorage(Protocol):
    """The four operations a file store offers. Implementations must make ``put`` atomic
    (a reader never sees a half-written file under a key) and choose keys themselves."""

    async def put(self, chunks: AsyncIterable[bytes], *, max_size: int) -> StoredBlob:
        """Store the stream under a new key; ``FileTooLarge`` (nothing kept) past
        ``max_size`` bytes."""

    def open(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes, chunk by chunk; ``FileMissing`` when the key is unknown."""

    async def delete(self, key: str) -> None:
        """Forget the key; deleting an unknown key is not an error."""

    async def exists(self, key: str) -> bool:
        """Whether the key holds a file."""


def new_key() -> str:
    """A fresh key: 128 random bits as hex, sharded by its first two characters."""
    token = secrets.token_hex(16)
    return f"{token[:2]}/{token}"


class _Counter:
    """Counts and hashes a stream, keeping its first ``HEAD_BYTES``."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.size = 0
        self.digest = hashlib.sha256()
        self.head = b""

    def take(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_size:
            raise FileTooLarge(self.max_size)
        self.digest.update(chunk)
        if len(self.head) < HEAD_BYTES:
            self.head = (self.head + chunk)[:HEAD_BYTES]

    def blob(self, key: str) -> StoredBlob:
        return StoredBlob(key, self.size, self.digest.hexdigest(), self.head)


class FolderStorage:
    """Files in a folder on the server's disk: each under its key (``ab/ab12…``), written
    to a temporary file in the same folder and renamed into place once complete, so a
    crash or a refused upload leaves no partial file under a key."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if len(parts) != 2 or not all(p.isalnum() and p.isascii() for p in parts):
            raise FileMissing(key)  # not a key this store made: never a path outside root
        return self.root / parts[0] / parts[1]

    async def put(self, chunks: AsyncIterable[bytes], *, max_size: int) -> StoredBlob:
        key = new_key()
        target = self._path(key)
        await anyio.to_thread.run_sync(lambda: target.parent.mkdir(parents=True, exist_ok=True))
        temporary = target.parent / f".{target.name}.part"
        counter = _Counter(max_size)
        try:
            async with await anyio.open_file(temporary, "xb") as out:
                async for chunk in chunks:
                    counter.take(chunk)
                    await out.write(chunk)
                await out.flush()
                await anyio.to_thread.run_sync(os.fsync, out.wrapped.fileno())
            await anyio.to_thread.run_sync(os.replace, temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        return counter.blob(key)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            source = await anyio.open_file(path, "rb")
        except FileNotFoundError:
            raise FileMissing(key) from None
        async with source:
            while chunk := await source.read(CHUNK):
                yield chunk

    async def delete(self, key: str) -> None:
        try:
            path = self._path(key)
        except FileMissing:
            return
        with contextlib.suppress(FileNotFoundError):
            await anyio.to_thread.run_sync(path.unlink)

    async def exists(self, key: str) -> bool:
        try:
            path = self._path(key)
        except FileMissing:
            return False
        return await anyio.to_thread.run_sync(path.is_file)


class MemoryStorage:
    """Files in a dictionary: for tests and throw-away instances (``storage: memory``);
    gone when the process ends, and not shared between processes."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    async def put(self, chunks: AsyncIterable[bytes], *, max_size: int) -> StoredBlob:
        counter = _Counter(max_size)
        parts = []
        async for chunk in chunks:
            counter.take(chunk)
            parts.append(chunk)
        key = new_key()
        self.blobs[key] = b"".join(parts)
        return counter.blob(key)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        if key not in self.blobs:
            raise FileMissing(key)
        data = self.blobs[key]
        for start in range(0, len(data), CHUNK):
            yield data[start : start + CHUNK]

    async def delete(self, key: str) -> None:
        self.blobs.pop(key, None)

    async def exists(self, key: str) -> bool:
        return key in self.blobs

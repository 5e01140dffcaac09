"""Where backup artifacts live: a small storage interface and its backends.

A backend stores named objects (``<backup name>.sql.gz``, ``<backup name>.manifest.json``)
under one root (a directory; for S3 a bucket and prefix). Writes are streams: the writer
gets a file-like object with ``write(bytes)``, and the object appears only when the stream
is committed, so a failed backup never leaves a half-written artifact that looks complete.
That shape fits an S3 multipart upload too: parts go up as the stream fills, ``commit``
completes the upload and ``abort`` aborts it.
"""

from __future__ import annotations

import abc
import os
import tempfile
from typing import IO, Any

_PARTIAL_PREFIX = ".partial-"


class StorageError(Exception):
    """The storage backend could not do what was asked; the message says what and where."""


class WriteStream(abc.ABC):
    """A stream being written into storage. Use as a context manager: it commits on
    success and aborts on an exception."""

    @abc.abstractmethod
    def write(self, data: bytes) -> int: ...

    @abc.abstractmethod
    def commit(self) -> None:
        """Make the object visible under its name."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Drop what was written; the name is left as it was."""

    def __enter__(self) -> WriteStream:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class Storage(abc.ABC):
    """Named objects under one root."""

    @abc.abstractmethod
    def open_write(self, name: str) -> WriteStream: ...

    @abc.abstractmethod
    def open_read(self, name: str) -> IO[bytes]:
        """A binary stream of the object; raises StorageError if it is missing."""

    @abc.abstractmethod
    def exists(self, name: str) -> bool: ...

    @abc.abstractmethod
    def delete(self, name: str) -> None: ...

    @abc.abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Names of the objects whose name starts with prefix, sorted."""

    @abc.abstractmethod
    def location(self, name: str) -> str:
        """Where the object is, as a user would write it (a path, or s3://bucket/key)."""

    def discard_incomplete(self) -> int:
        """Remove what writes that never committed or aborted (a killed process) left under the
        root; returns how many. Only while nothing is writing into this root."""
        return 0


class _FileWriteStream(WriteStream):
    """Writes to a temporary file beside the target; commit renames it into place."""

    # Written data is handed to the disk every this many bytes rather than all at commit's
    # fsync, which would otherwise wait for the whole file (and leave it in the page cache).
    WRITEBACK_BYTES = 16 * 1024 * 1024

    def __init__(self, target: str) -> None:
        self._target = target
        fd, self._temp = tempfile.mkstemp(prefix=_PARTIAL_PREFIX, dir=os.path.dirname(target))
        self._file = os.fdopen(fd, "wb")
        self._written = 0
        self._handed = 0  # bytes handed to the disk

    def write(self, data: bytes) -> int:
        size = self._file.write(data)
        self._written += size
        if self._written - self._handed >= self.WRITEBACK_BYTES and hasattr(os, "posix_fadvise"):
            self._file.flush()
            # DONTNEED starts the writeback of the dirty pages without waiting for it, and
            # drops the pages of earlier ranges once they are on disk.
            os.posix_fadvise(self._file.fileno(), 0, self._written, os.POSIX_FADV_DONTNEED)
            self._handed = self._written
        return size

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._temp, self._target)

    def abort(self) -> None:
        self._file.close()
        try:
            os.unlink(self._temp)
        except FileNotFoundError:
            pass


class PathStorage(Storage):
    """A directory on a mounted volume."""

    def __init__(self, root: str, create: bool = False) -> None:
        self.root = os.path.abspath(root)
        if create:
            try:
                os.makedirs(self.root, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"Cannot create the backup directory {self.root}: {exc.strerror}") from exc
        if not os.path.isdir(self.root):
            raise StorageError(f"The backup directory {self.root} does not exist or is not a directory")

    def _path(self, name: str) -> str:
        if not name or "/" in name or name.startswith("."):
            raise StorageError(f"Invalid object name {name!r}: use a plain file name")
        return os.path.join(self.root, name)

    def open_write(self, name: str) -> WriteStream:
        try:
            return _FileWriteStream(self._path(name))
        except OSError as exc:
            raise StorageError(f"Cannot write into {self.root}: {exc.strerror}") from exc

    def open_read(self, name: str) -> IO[bytes]:
        try:
            return open(self._path(name), "rb")
        except FileNotFoundError as exc:
            raise StorageError(f"{self.location(name)} does not exist") from exc
        except OSError as exc:
            raise StorageError(f"Cannot read {self.location(name)}: {exc.strerror}") from exc

    def exists(self, name: str) -> bool:
        return os.path.isfile(self._path(name))

    def delete(self, name: str) -> None:
        try:
            os.unlink(self._path(name))
        except FileNotFoundError:
            pass

    def list(self, prefix: str = "") -> list[str]:
        return sorted(n for n in os.listdir(self.root) if n.startswith(prefix) and not n.startswith("."))

    def location(self, name: str) -> str:
        return os.path.join(self.root, name)

    def discard_incomplete(self) -> int:
        partial = [n for n in os.listdir(self.root) if n.startswith(_PARTIAL_PREFIX)]
        for name in partial:
            try:
                os.unlink(os.path.join(self.root, name))
            except FileNotFoundError:
                pass
        return len(partial)


def storage_argument_spec() -> dict[str, dict[str, Any]]:
    """Options that choose the storage backend: a directory (``path``) or S3 (``s3``)."""
    from ansible.module_utils.simpledb.storage_s3 import s3_argument_spec

    return {"path": {"type": "path"}, "s3": {"type": "dict", "options": s3_argument_spec()}}


def storage_from_params(params: dict[str, Any], create: bool = False) -> Storage:
    """The backend the module parameters ask for."""
    if params.get("path"):
        return PathStorage(params["path"], create=create)
    if params.get("s3"):
        from ansible.module_utils.simpledb.storage_s3 import S3Storage

        return S3Storage.from_params(params["s3"])
    raise StorageError("No backup destination given: set path or s3")


def storage_for_location(location: str, s3: dict[str, Any] | None = None) -> tuple[Storage, str]:
    """The backend holding a location, and the object's name in it.

    ``/backups/db-1.sql.gz`` → (PathStorage("/backups"), ``db-1.sql.gz``);
    ``s3://bucket/db/db-1.sql.gz`` → (S3Storage of bucket, prefix ``db``, ``db-1.sql.gz``),
    reached with the endpoint and credentials in ``s3`` (its bucket and prefix are ignored).
    """
    if location.startswith("s3://"):
        from ansible.module_utils.simpledb.storage_s3 import S3Storage, parse_s3_location

        if not s3:
            raise StorageError(f"{location} is in S3: give the s3 option with the endpoint and credentials")
        bucket, key = parse_s3_location(location)
        prefix, _, name = key.rpartition("/")
        return S3Storage.from_params({**s3, "bucket": bucket}, prefix=prefix), name
    if "://" in location:
        raise StorageError(f"Unsupported backup location {location!r}: give a file path or s3://bucket/key")
    root, _, name = location.rstrip("/").rpartition("/")
    if not name:
        raise StorageError(f"The backup location {location!r} names no file")
    return PathStorage(root or "/"), name

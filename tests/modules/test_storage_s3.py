"""The S3 storage backend against a real S3-compatible server (MinIO on loopback).

Streams go up as multipart uploads part by part and come back byte for byte; failures leave
no object and no stored parts behind; every error names the bucket, key or endpoint and never
a credential.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import pytest
from ansible.module_utils.simpledb.storage import PathStorage, StorageError, storage_for_location
from ansible.module_utils.simpledb.storage_s3 import MIB, UPLOAD_BYTES, S3Storage, parse_s3_location

from tests.fixtures.mariadb import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bucket(minio):
    return minio.create_bucket()


def storage(minio, bucket, prefix="backups/ns/db", **extra) -> S3Storage:
    return S3Storage.from_params(minio.s3_option(bucket, prefix, **extra))


def write_in_pieces(stream, data: bytes, piece: int = 256 * 1024) -> None:
    for start in range(0, len(data), piece):
        stream.write(memoryview(data)[start : start + piece])


def assert_no_secret(text: str, minio) -> None:
    assert minio.secret_key not in text and minio.access_key not in text


def test_small_object_round_trip(minio, bucket):
    store = storage(minio, bucket)
    with store.open_write("b1.manifest.json") as stream:
        stream.write(b'{"format": "x"}\n')
    assert store.exists("b1.manifest.json")
    with store.open_read("b1.manifest.json") as stream:
        assert stream.read() == b'{"format": "x"}\n'
    assert store.location("b1.manifest.json") == f"s3://{bucket}/backups/ns/db/b1.manifest.json"
    assert minio.keys(bucket) == ["backups/ns/db/b1.manifest.json"]


def test_a_stream_larger_than_a_part_goes_up_in_several_parts(minio, bucket):
    store = storage(minio, bucket, part_size=5)
    data = os.urandom(12 * MIB + 4321)
    with store.open_write("b1.sql.gz") as stream:
        write_in_pieces(stream, data)
    head = minio.client().head_object(Bucket=bucket, Key="backups/ns/db/b1.sql.gz")
    # A multipart object's ETag ends with the number of parts: 5 + 5 + the rest.
    assert head["ETag"].strip('"').endswith("-3")
    assert head["ContentLength"] == len(data)
    with store.open_read("b1.sql.gz") as stream:
        assert hashlib.sha256(stream.read()).digest() == hashlib.sha256(data).digest()
    # Line iteration works on the stream too (the restore reads uncompressed files by line).
    with store.open_write("lines.sql") as stream:
        stream.write(b"one;\ntwo;\nthree;\n")
    with store.open_read("lines.sql") as stream:
        assert list(stream) == [b"one;\n", b"two;\n", b"three;\n"]
    assert minio.uploads(bucket) == []


def test_memory_stays_within_the_upload_budget(minio, bucket):
    store = storage(minio, bucket, part_size=5)
    piece = os.urandom(MIB)
    tracemalloc.start()
    try:
        with store.open_write("big.sql.gz") as stream:
            for _ in range(60):
                stream.write(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (
        minio.client().head_object(Bucket=bucket, Key="backups/ns/db/big.sql.gz")["ContentLength"] == 60 * MIB
    )
    # 60 MiB streamed in 5 MiB parts: the part filling and the parts queued or uploading, which
    # hold at most UPLOAD_BYTES.
    assert peak < 5 * MIB + UPLOAD_BYTES + 2 * MIB, f"peak {peak / MIB:.1f} MiB"


def test_an_error_while_writing_aborts_the_upload(minio, bucket):
    store = storage(minio, bucket, part_size=5)
    with pytest.raises(RuntimeError, match="the dump failed"):
        with store.open_write("b1.sql.gz") as stream:
            write_in_pieces(stream, os.urandom(11 * MIB))
            raise RuntimeError("the dump failed")
    assert minio.keys(bucket) == []
    assert minio.uploads(bucket) == []


def test_abort_before_the_first_part_leaves_nothing(minio, bucket):
    store = storage(minio, bucket)
    stream = store.open_write("b1.sql.gz")
    stream.write(b"partial")
    stream.abort()
    assert minio.keys(bucket) == [] and minio.uploads(bucket) == []


def test_a_committed_object_replaces_the_old_one(minio, bucket):
    store = storage(minio, bucket)
    for content in (b"first", b"second"):
        with store.open_write("b1.manifest.json") as stream:
            stream.write(content)
    with store.open_read("b1.manifest.json") as stream:
        assert stream.read() == b"second"


KILLED_WRITER = """
import os, sys, ansible.module_utils as m
m.__path__.append(sys.argv[1])
from ansible.module_utils.simpledb.storage_s3 import S3Storage, MIB
bucket, access_key, secret_key, endpoint = sys.argv[2:6]
store = S3Storage(bucket, "backups/ns/db", access_key, secret_key, endpoint=endpoint, part_size=5 * MIB)
stream = store.open_write("b1.sql.gz")
stream.write(os.urandom(11 * MIB))
stream._finish_thread()  # both full parts are stored
os._exit(9)  # killed: neither commit nor abort runs
"""


def test_discard_incomplete_aborts_what_a_killed_writer_left(minio, bucket):
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_WRITER,
            str(ROOT / "plugins" / "module_utils"),
            bucket,
            minio.access_key,
            minio.secret_key,
            minio.endpoint,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == 9, killed.stderr
    assert minio.uploads(bucket) == ["backups/ns/db/b1.sql.gz"]
    other = storage(minio, bucket, prefix="backups/ns/other")
    assert other.discard_incomplete() == 0
    assert minio.uploads(bucket) == ["backups/ns/db/b1.sql.gz"]

    assert storage(minio, bucket).discard_incomplete() == 1
    assert minio.uploads(bucket) == [] and minio.keys(bucket) == []


def test_list_exists_and_delete(minio, bucket):
    store = storage(minio, bucket)
    for name in ("b2.sql.gz", "b1.sql.gz", "b1.manifest.json"):
        with store.open_write(name) as stream:
            stream.write(name.encode())
    # Objects of another root (deeper, or beside) are not this root's.
    with storage(minio, bucket, prefix="backups/ns/db/b9").open_write("deeper.sql.gz") as stream:
        stream.write(b"x")
    with storage(minio, bucket, prefix="backups/ns/db2").open_write("b1.sql.gz") as stream:
        stream.write(b"x")
    assert store.list() == ["b1.manifest.json", "b1.sql.gz", "b2.sql.gz"]
    assert store.list("b1.") == ["b1.manifest.json", "b1.sql.gz"]
    store.delete("b1.sql.gz")
    store.delete("b1.sql.gz")  # deleting what is gone is not an error
    assert not store.exists("b1.sql.gz") and store.exists("b1.manifest.json")
    assert store.list() == ["b1.manifest.json", "b2.sql.gz"]


def test_a_missing_object_says_where_it_looked(minio, bucket):
    store = storage(minio, bucket)
    assert store.exists("nothing.manifest.json") is False
    with pytest.raises(StorageError) as raised:
        store.open_read("nothing.manifest.json")
    assert str(raised.value) == f"s3://{bucket}/backups/ns/db/nothing.manifest.json does not exist"


def test_a_missing_bucket_is_named(minio):
    store = storage(minio, "no-such-bucket")
    with pytest.raises(StorageError, match=f"The bucket no-such-bucket does not exist at {minio.endpoint}"):
        with store.open_write("b1.manifest.json") as stream:
            stream.write(b"{}")
    with pytest.raises(StorageError, match="does not exist"):
        store.list()


@pytest.mark.parametrize("wrong", ["secret", "access"])
def test_wrong_credentials_fail_every_operation_without_showing_them(minio, bucket, wrong):
    with storage(minio, bucket).open_write("b1.sql.gz") as stream:
        stream.write(b"data")
    bad = (
        {"secret_key": "not-the-" + minio.secret_key}
        if wrong == "secret"
        else {"access_key": "AKIDWRONG1234"}
    )
    store = storage(minio, bucket, **bad)
    attempts = [
        lambda: store.open_read("b1.sql.gz"),
        lambda: store.exists("b1.sql.gz"),
        lambda: store.list(),
        lambda: store.delete("b1.sql.gz"),
        lambda: store.open_write("b2.sql.gz").commit(),
        lambda: store.discard_incomplete(),
    ]
    for attempt in attempts:
        with pytest.raises(StorageError) as raised:
            attempt()
        message = str(raised.value)
        assert f"S3 at {minio.endpoint} refused to" in message, message
        assert "check the access key id and secret access key" in message
        assert_no_secret(message, minio)
        assert "not-the-" not in message and "AKIDWRONG1234" not in message
    assert minio.keys(bucket) == ["backups/ns/db/b1.sql.gz"]


def test_an_unreachable_endpoint_is_named(minio, bucket):
    port = free_port()  # nothing listens there
    store = storage(minio, bucket, endpoint=f"http://127.0.0.1:{port}")
    with pytest.raises(StorageError) as raised:
        store.exists("b1.sql.gz")
    assert str(raised.value).startswith(f"Cannot reach the S3 endpoint http://127.0.0.1:{port}")
    assert_no_secret(str(raised.value), minio)


def test_invalid_settings_are_refused(minio, bucket):
    with pytest.raises(StorageError, match="part size must be between 5 MiB and 5 GiB"):
        storage(minio, bucket, part_size=1)
    with pytest.raises(StorageError, match="must be a URL"):
        storage(minio, bucket, endpoint="127.0.0.1:9000")
    with pytest.raises(StorageError, match="No S3 bucket given"):
        S3Storage.from_params({**minio.s3_option(bucket), "bucket": None})
    with pytest.raises(StorageError, match="Invalid object name"):
        storage(minio, bucket).open_write("../escape")


def test_locations_name_the_backend(minio, bucket, tmp_path):
    assert parse_s3_location("s3://bkt/a/b/c.sql.gz") == ("bkt", "a/b/c.sql.gz")
    for bad in ("s3://bkt", "s3://bkt/", "s3:///key", "s3://bkt/dir/"):
        with pytest.raises(StorageError, match="names no object"):
            parse_s3_location(bad)
    with storage(minio, bucket).open_write("b1.manifest.json") as stream:
        stream.write(b"{}")
    found, name = storage_for_location(
        f"s3://{bucket}/backups/ns/db/b1.manifest.json", s3=minio.s3_option("ignored", "ignored")
    )
    assert isinstance(found, S3Storage) and name == "b1.manifest.json"
    assert found.location(name) == f"s3://{bucket}/backups/ns/db/b1.manifest.json"
    with found.open_read(name) as stream:
        assert stream.read() == b"{}"
    with pytest.raises(StorageError, match="give the s3 option"):
        storage_for_location(f"s3://{bucket}/backups/ns/db/b1.manifest.json")
    local, name = storage_for_location(str(tmp_path / "b1.manifest.json"))
    assert isinstance(local, PathStorage) and name == "b1.manifest.json"


def test_path_storage_discards_partial_files(tmp_path):
    store = PathStorage(str(tmp_path))
    stream = store.open_write("b1.sql.gz")  # a process killed here leaves its temporary file
    stream.write(b"partial")
    (tmp_path / "b0.sql.gz").write_bytes(b"complete")
    assert len(list(tmp_path.glob(".partial-*"))) == 1
    assert store.discard_incomplete() == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b0.sql.gz"]


class CuttingProxy:
    """A TCP proxy on loopback that, once armed, cuts the connection that has sent more than
    `after` bytes back to the client: a dropped connection in the middle of a download."""

    def __init__(self, upstream_port: int, after: int) -> None:
        self.upstream_port = upstream_port
        self.after = after
        self.armed = False
        self.cuts = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, downstream: bool) -> None:
        sent = 0
        try:
            while data := source.recv(65536):
                if downstream and self.armed:
                    sent += len(data)
                    if sent > self.after:
                        self.armed = False
                        self.cuts += 1
                        break
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def close(self) -> None:
        self.listener.close()


def test_a_dropped_download_resumes_where_it_stopped(minio, bucket):
    data = os.urandom(8 * MIB)
    with storage(minio, bucket, part_size=5).open_write("b1.sql.gz") as stream:
        write_in_pieces(stream, data)
    proxy = CuttingProxy(int(minio.endpoint.rsplit(":", 1)[1]), after=3 * MIB)
    try:
        store = storage(minio, bucket, endpoint=f"http://127.0.0.1:{proxy.port}")
        with store.open_read("b1.sql.gz") as stream:
            proxy.armed = True
            received = stream.read()
        assert proxy.cuts == 1
        assert received == data
    finally:
        proxy.close()

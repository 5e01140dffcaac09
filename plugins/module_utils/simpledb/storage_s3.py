"""S3-compatible object storage for backup artifacts (AWS S3, MinIO, Ceph RGW ...), on boto3.

The objects of one root live under ``<prefix>/`` in a bucket; their locations read
``s3://<bucket>/<prefix>/<name>``.

Writes stream: bytes are collected into parts of ``part_size`` and each full part goes up in
a multipart upload while the next one fills. The parts queued or uploading hold at most
UPLOAD_BYTES (or one part, if parts are larger), so memory stays at one filling part plus
that whatever the artifact's size, and nothing is copied to disk. ``commit`` completes the upload (an object
smaller than one part is sent with a single PUT instead); ``abort`` aborts it, so a failed
backup leaves no object and no stored parts. An upload interrupted by a killed process
cannot abort itself: ``discard_incomplete`` aborts what such uploads left under the root.

Reads stream the object with a GET and resume from where they stopped (a ranged GET that
must match the object's ETag) if the connection drops.

Credentials are parameters, never read from the environment or instance metadata, and never
appear in an error message: errors name the bucket, key, endpoint and the S3 error code.
"""

from __future__ import annotations

import io
import queue
import threading
from typing import IO, Any

from ansible.module_utils.simpledb.storage import Storage, StorageError, WriteStream

try:
    import boto3
    import botocore.config
    import botocore.exceptions

    BOTO3_IMPORT_ERROR: str | None = None
    _UNREACHABLE = (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError)
except ImportError as exc:  # pragma: no cover - reported when an s3 destination is used
    boto3 = None
    BOTO3_IMPORT_ERROR = str(exc)

MIB = 1024 * 1024
# S3's limits: every part but the last at least 5 MiB, at most 5 GiB, at most 10,000 parts.
MIN_PART_SIZE = 5 * MIB
MAX_PART_SIZE = 5 * 1024 * MIB
MAX_PARTS = 10_000
# The part size doubles every this many parts, so that a stream of unknown length still fits
# in 10,000 parts (8 MiB parts reach S3's 5 TiB object limit); memory grows only for
# artifacts of hundreds of GiB.
PARTS_PER_DOUBLING = 1000
DEFAULT_PART_SIZE_MIB = 8  # as the AWS CLI
# Bytes of the parts queued or uploading: two default parts, one uploading while the next waits.
UPLOAD_BYTES = 16 * MIB
READ_RESUME_ATTEMPTS = 3
_READ_BUFFER = MIB

# S3 error codes that mean the credentials are wrong or lack a permission.
_AUTH_ERRORS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "InvalidToken",
    "ExpiredToken",
    "AuthorizationHeaderMalformed",
    "InvalidClientTokenId",
    "403",
    "Forbidden",
}
_MISSING_OBJECT = {"NoSuchKey", "404", "NotFound"}


def s3_argument_spec() -> dict[str, dict[str, Any]]:
    """Suboptions of the modules' ``s3`` option."""
    return {
        "bucket": {"type": "str"},
        "prefix": {"type": "str", "default": ""},
        "endpoint": {"type": "str"},
        "region": {"type": "str", "default": "us-east-1"},
        "access_key": {"type": "str", "required": True, "no_log": True},
        "secret_key": {"type": "str", "required": True, "no_log": True},
        "force_path_style": {"type": "bool", "default": True},
        "part_size": {"type": "int", "default": DEFAULT_PART_SIZE_MIB},
    }


def parse_s3_location(location: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` → (``bucket``, ``some/key``)."""
    if not location.startswith("s3://"):
        raise StorageError(f"{location!r} is not an S3 location (s3://bucket/key)")
    bucket, _, key = location[len("s3://") :].partition("/")
    if not bucket or not key or key.endswith("/"):
        raise StorageError(f"The S3 location {location!r} names no object: write it as s3://bucket/key")
    return bucket, key


class S3Storage(Storage):
    """Named objects under ``prefix`` in one bucket."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        access_key: str,
        secret_key: str,
        endpoint: str | None = None,
        region: str = "us-east-1",
        force_path_style: bool = True,
        part_size: int = DEFAULT_PART_SIZE_MIB * MIB,
    ) -> None:
        if boto3 is None:
            raise StorageError(
                "The Python library boto3 is required for S3 destinations (pip install boto3): "
                + str(BOTO3_IMPORT_ERROR)
            )
        if not bucket:
            raise StorageError("No S3 bucket given: set s3.bucket")
        if not access_key or not secret_key:
            raise StorageError(
                "S3 needs an access key id and a secret access key: set s3.access_key and s3.secret_key"
            )
        if endpoint and not endpoint.startswith(("http://", "https://")):
            raise StorageError(
                f"The S3 endpoint {endpoint!r} must be a URL starting with http:// or https://"
            )
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise StorageError(
                f"The S3 part size must be between 5 MiB and 5 GiB (got {part_size // MIB} MiB)"
            )
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = endpoint or f"AWS S3 ({region})"
        self.part_size = part_size
        self._secrets = [access_key, secret_key]
        config = botocore.config.Config(
            region_name=region,
            s3={"addressing_style": "path" if force_path_style else "virtual"},
            connect_timeout=10,
            read_timeout=120,
            retries={"max_attempts": 5, "mode": "standard"},
            # One upload thread and one reader per storage; keep the pool small.
            max_pool_connections=4,
        )
        # A session of its own: no profile, no environment or instance-metadata credentials.
        session = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
        )
        self.client = session.client("s3", endpoint_url=endpoint or None, config=config)

    @classmethod
    def from_params(cls, s3: dict[str, Any], prefix: str | None = None) -> S3Storage:
        """The storage an ``s3`` module option describes; ``prefix`` overrides ``s3.prefix``."""
        return cls(
            bucket=s3.get("bucket") or "",
            prefix=(s3.get("prefix") or "") if prefix is None else prefix,
            access_key=s3.get("access_key") or "",
            secret_key=s3.get("secret_key") or "",
            endpoint=s3.get("endpoint"),
            region=s3.get("region") or "us-east-1",
            force_path_style=s3.get("force_path_style", True),
            part_size=(s3.get("part_size") or DEFAULT_PART_SIZE_MIB) * MIB,
        )

    # -- names and errors --------------------------------------------------------------------
    def key(self, name: str) -> str:
        if not name or "/" in name or name.startswith("."):
            raise StorageError(f"Invalid object name {name!r}: use a plain file name")
        return f"{self.prefix}/{name}" if self.prefix else name

    def location(self, name: str) -> str:
        return f"s3://{self.bucket}/{self.key(name)}"

    def describe_error(self, exc: BaseException, action: str, name: str | None = None) -> StorageError:
        """A StorageError that says what failed, where, and what to check; never a credential."""
        where = self.location(name) if name else f"s3://{self.bucket}/{self.prefix}"
        if isinstance(exc, botocore.exceptions.ClientError):
            error = exc.response.get("Error", {})
            code = str(
                error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
            )
            if code in _MISSING_OBJECT:
                message = f"{where} does not exist"
            elif code == "NoSuchBucket":
                message = f"The bucket {self.bucket} does not exist at {self.endpoint}"
            elif code == "NoSuchUpload":
                message = f"The upload of {where} was aborted by the server or another process"
            elif code in _AUTH_ERRORS:
                message = (
                    f"S3 at {self.endpoint} refused to {action} {where} ({code}): check the access key id "
                    "and secret access key, and that they may read and write the bucket"
                )
            else:
                detail = f"{code} {error.get('Message', '')}".rstrip()
                message = f"S3 at {self.endpoint} could not {action} {where}: {detail}"
        elif isinstance(exc, _UNREACHABLE):
            message = (
                f"Cannot reach the S3 endpoint {self.endpoint} to {action} {where}: "
                "check the endpoint and the network"
            )
        elif isinstance(exc, botocore.exceptions.BotoCoreError):
            message = f"Could not {action} {where} at {self.endpoint}: {exc}"
        else:
            message = f"Could not {action} {where} at {self.endpoint}: {type(exc).__name__}: {exc}"
        return StorageError(self.redact(message))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "********")
        return text

    # -- the Storage interface ---------------------------------------------------------------
    def open_write(self, name: str) -> WriteStream:
        return _S3WriteStream(self, name)

    def open_read(self, name: str) -> IO[bytes]:
        raw = _S3ReadStream(self, name)
        return io.BufferedReader(raw, buffer_size=_READ_BUFFER)  # type: ignore[return-value]

    def exists(self, name: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(name))
        except botocore.exceptions.ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING_OBJECT:
                return False
            raise self.describe_error(exc, "look up", name) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise self.describe_error(exc, "look up", name) from None
        return True

    def delete(self, name: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(name))
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise self.describe_error(exc, "delete", name) from None

    def list(self, prefix: str = "") -> list[str]:
        root = f"{self.prefix}/" if self.prefix else ""
        names = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=root + prefix, Delimiter="/"
            )
            for page in pages:
                names += [item["Key"][len(root) :] for item in page.get("Contents", [])]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise self.describe_error(exc, "list") from None
        return sorted(n for n in names if not n.startswith("."))

    def discard_incomplete(self) -> int:
        """Abort the multipart uploads under the root that were never completed (a process
        killed mid-upload leaves its parts stored, and billed, until then)."""
        root = f"{self.prefix}/" if self.prefix else ""
        aborted = 0
        try:
            # The whole bucket's uploads, filtered here: MinIO applies a listing's Prefix only
            # as an exact key, so a prefix would find nothing there.
            for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket):
                for upload in page.get("Uploads", []):
                    key = upload["Key"]
                    if key.startswith(root) and "/" not in key[len(root) :]:
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=key, UploadId=upload["UploadId"]
                        )
                        aborted += 1
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise self.describe_error(exc, "abort the unfinished uploads under") from None
        return aborted


class _S3WriteStream(WriteStream):
    """A multipart upload fed part by part; one background thread sends the parts."""

    def __init__(self, storage: S3Storage, name: str) -> None:
        self._storage = storage
        self._name = name
        self._key = storage.key(name)
        self._buffer = bytearray()
        self._part_size = storage.part_size
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._parts_sent = 0
        self._queue: queue.Queue[tuple[int, bytearray] | None] = queue.Queue()
        self._uploading = 0  # bytes of the parts queued or uploading, at most UPLOAD_BYTES
        self._room = threading.Condition()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._closed = False

    def write(self, data: bytes) -> int:
        if self._closed:
            raise StorageError(f"{self._storage.location(self._name)} is already closed")
        self._raise_upload_error()
        self._buffer += data
        while len(self._buffer) >= self._part_size:
            # The full buffer becomes the part as it is; only the overflow is copied.
            part, self._buffer = self._buffer, self._buffer[self._part_size :]
            del part[self._part_size :]
            self._send(part)
        return len(data)

    def _send(self, part: bytearray) -> None:
        if self._upload_id is None:
            self._start()
        if self._parts_sent == MAX_PARTS:
            raise StorageError(f"{self._storage.location(self._name)} would need more than {MAX_PARTS} parts")
        self._parts_sent += 1
        with self._room:
            while self._uploading and self._uploading + len(part) > UPLOAD_BYTES and self._error is None:
                self._room.wait()
            self._uploading += len(part)
        self._queue.put((self._parts_sent, part))
        self._raise_upload_error()
        if self._parts_sent % PARTS_PER_DOUBLING == 0:
            self._part_size = min(self._part_size * 2, MAX_PART_SIZE)

    def _start(self) -> None:
        try:
            created = self._storage.client.create_multipart_upload(Bucket=self._storage.bucket, Key=self._key)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise self._storage.describe_error(exc, "start an upload of", self._name) from None
        self._upload_id = created["UploadId"]
        self._thread = threading.Thread(target=self._upload_parts, name="s3-upload", daemon=True)
        self._thread.start()

    def _upload_parts(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            number, part = item
            size = len(part)
            # After a failure the parts are drained, so that the writer never blocks.
            if self._error is None:
                try:
                    response = self._storage.client.upload_part(
                        Bucket=self._storage.bucket,
                        Key=self._key,
                        UploadId=self._upload_id,
                        PartNumber=number,
                        Body=part,
                    )
                    self._parts.append({"PartNumber": number, "ETag": response["ETag"]})
                except BaseException as exc:  # reported to the writer by write() and commit()
                    self._error = exc
            del item, part
            with self._room:
                self._uploading -= size
                self._room.notify_all()

    def _raise_upload_error(self) -> None:
        if self._error is not None:
            raise self._storage.describe_error(self._error, "upload", self._name) from None

    def _finish_thread(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def commit(self) -> None:
        if self._closed:
            return
        client, bucket = self._storage.client, self._storage.bucket
        try:
            if self._upload_id is None:
                # Smaller than one part: a single PUT.
                client.put_object(Bucket=bucket, Key=self._key, Body=self._buffer)
            else:
                if self._buffer:
                    self._send(self._buffer)
                    self._buffer = bytearray()
                self._finish_thread()
                self._raise_upload_error()
                client.complete_multipart_upload(
                    Bucket=bucket,
                    Key=self._key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": sorted(self._parts, key=lambda p: p["PartNumber"])},
                )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            self.abort()
            raise self._storage.describe_error(exc, "store", self._name) from None
        except BaseException:
            self.abort()
            raise
        self._buffer = bytearray()
        self._closed = True

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._buffer = bytearray()
        if self._upload_id is None:
            return
        if self._thread is not None:
            self._error = self._error or StorageError("aborted")
            self._finish_thread()
        try:
            self._storage.client.abort_multipart_upload(
                Bucket=self._storage.bucket, Key=self._key, UploadId=self._upload_id
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            # Already failing; what remains is found and aborted by discard_incomplete().
            pass


class _S3ReadStream(io.RawIOBase):
    """The object's bytes; a dropped connection resumes with a ranged GET of the same ETag."""

    def __init__(self, storage: S3Storage, name: str) -> None:
        self._storage = storage
        self._name = name
        self._key = storage.key(name)
        self._position = 0
        self._etag: str | None = None
        self._body: Any = None
        self._open()

    def _open(self) -> None:
        request: dict[str, Any] = {"Bucket": self._storage.bucket, "Key": self._key}
        if self._etag is not None:
            request.update(Range=f"bytes={self._position}-", IfMatch=self._etag)
        try:
            response = self._storage.client.get_object(**request)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise self._storage.describe_error(exc, "read", self._name) from None
        self._etag = response["ETag"]
        self._body = response["Body"]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        for attempt in range(READ_RESUME_ATTEMPTS + 1):
            try:
                data = self._body.read(len(buffer))
                break
            except (botocore.exceptions.BotoCoreError, OSError) as exc:
                if attempt == READ_RESUME_ATTEMPTS:
                    raise self._storage.describe_error(exc, "read", self._name) from None
                self._body.close()
                self._open()
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def close(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None
        super().close()

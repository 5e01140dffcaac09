"""The backup manifest: a JSON document beside the data file that describes and seals it.

docs/backup-format.md describes every field. A backup is complete when its manifest exists:
the data file is written first, the manifest last.
"""

from __future__ import annotations

import json
from typing import IO, Any

FORMAT = "simpledb-logical-backup"
FORMAT_VERSION = 1
TOOL_VERSION = "0.1.0"
MANIFEST_SUFFIX = ".manifest.json"
DATA_SUFFIXES = {"gzip": ".sql.gz", "none": ".sql"}


class ManifestError(Exception):
    """The manifest is missing, unreadable or not one this version understands."""


def manifest_name(backup_name: str) -> str:
    return backup_name + MANIFEST_SUFFIX


def data_name(backup_name: str, compression: str) -> str:
    return backup_name + DATA_SUFFIXES[compression]


def backup_name_of(object_name: str) -> str:
    """The backup name in a data or manifest file name (``db-1.sql.gz`` → ``db-1``)."""
    for suffix in (MANIFEST_SUFFIX, *DATA_SUFFIXES.values()):
        if object_name.endswith(suffix):
            return object_name[: -len(suffix)]
    return object_name


def dump_manifest(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode()


_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "format_version": int,
    "database": str,
    "data": dict,
    "tables": list,
    "objects": dict,
}
_REQUIRED_DATA: dict[str, type | tuple[type, ...]] = {"name": str, "compression": str, "size": int, "sha256": str}
_REQUIRED_TABLE: dict[str, type | tuple[type, ...]] = {"name": str, "kind": str, "rows": int}


def _check_fields(where: str, value: dict[str, Any], required: dict[str, type | tuple[type, ...]]) -> None:
    for key, kind in required.items():
        if not isinstance(value.get(key), kind):
            raise ManifestError(f"{where} has no valid '{key}'")


def load_manifest(stream: IO[bytes], location: str) -> dict[str, Any]:
    """Read and check a manifest; the errors name the location and what is wrong."""
    try:
        manifest = json.loads(stream.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"The manifest {location} is not valid JSON ({exc}): the backup is damaged") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ManifestError(f"{location} is not a SimpleDB backup manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ManifestError(
            f"The manifest {location} has format version {manifest.get('format_version')!r}; "
            f"this module reads version {FORMAT_VERSION}: use a matching operator version"
        )
    try:
        _check_fields(f"The manifest {location}", manifest, _REQUIRED)
        _check_fields(f"The manifest {location} (data)", manifest["data"], _REQUIRED_DATA)
        for table in manifest["tables"]:
            if not isinstance(table, dict):
                raise ManifestError(f"The manifest {location} has a table entry that is not an object")
            _check_fields(f"The manifest {location} (table {table.get('name')!r})", table, _REQUIRED_TABLE)
    except ManifestError as exc:
        raise ManifestError(f"{exc}: the backup is damaged or was edited") from exc
    if manifest["data"]["compression"] not in DATA_SUFFIXES:
        raise ManifestError(f"The manifest {location} names an unknown compression")
    return manifest

"""One look at a SimpleDB's inputs, children and server, summed up in a digest.

A reconcile that finds the same digest as the last run that found everything converged has
nothing to do: the spec, the operator's role and settings, every child object (by
resourceVersion, which any change to an object bumps) and what the server answers are as they
were. Reading all of it in one process is what makes such a run cheap: each Ansible module run
is a new Python process that imports its libraries.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

from ansible.module_utils.simpledb.connection import ConnectionFailed, connect
from ansible.module_utils.simpledb.k8s import KubeAPI

# What a server probe reports that describes the server's state rather than the moment.
SERVER_FACTS = (
    "reachable",
    "error",
    "version",
    "read_only",
    "database_exists",
    "history_table_exists",
    "schema_version",
    "replication_role",
)


def content_digest(paths: list[str]) -> str:
    """sha256 over the names and contents of every file under ``paths``, in a stable order."""
    digest = hashlib.sha256()
    for top in paths:
        files = (
            [top]
            if os.path.isfile(top)
            else sorted(
                os.path.join(root, name)
                for root, dirs, names in os.walk(top)
                if "__pycache__" not in root.split(os.sep)
                for name in names
            )
        )
        for path in files:
            digest.update(os.path.relpath(path, top).encode() + b"\0")
            with open(path, "rb") as handle:
                digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()


def object_versions(api: KubeAPI, namespace: str, objects: list[dict[str, str]]) -> dict[str, str | None]:
    """``kind/name`` -> resourceVersion, None for an object that does not exist."""
    versions: dict[str, str | None] = {}
    for ref in objects:
        resource = api.resource(ref["api_version"], ref["kind"])
        obj = api.get(resource, ref["name"], namespace)
        versions[f"{ref['kind']}/{ref['name']}"] = obj["metadata"]["resourceVersion"] if obj else None
    return versions


def claim_versions(api: KubeAPI, namespace: str, label_selector: str) -> dict[str, str]:
    """PersistentVolumeClaim name -> resourceVersion for the claims the selector matches."""
    resource = api.resource("v1", "PersistentVolumeClaim")
    claims = api.list_objects(resource, namespace, label_selector)
    return {c["metadata"]["name"]: c["metadata"]["resourceVersion"] for c in claims}


def secret_values(secret: dict[str, Any] | None, keys: tuple[str, ...]) -> dict[str, str]:
    """The decoded values of ``keys`` that the Secret has."""
    data = (secret or {}).get("data") or {}
    return {key: base64.b64decode(data[key]).decode() for key in keys if key in data}


def login_outcome(host: str, port: int, user: str, password: str | None, database: str) -> str:
    """``ok`` when ``user`` can log in to ``database``; else why not, in a few words."""
    if password is None:
        return "no password"
    try:
        conn = connect(
            host=host, port=port, user=user, password=password, database=database, connect_timeout=5
        )
    except ConnectionFailed as exc:
        cause = exc.__cause__
        return f"error {cause.args[0]}" if cause is not None and cause.args else "unreachable"
    conn.close()
    return "ok"


def user_grants(host: str, port: int, root_password: str, user: str) -> list[str]:
    """The grants of ``user``@``%`` as root sees them; empty when the user does not exist."""
    try:
        conn = connect(host=host, port=port, password=root_password, connect_timeout=5)
    except ConnectionFailed:
        return []
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM mysql.global_priv WHERE User = %s AND Host = '%%'", (user,))
            if cur.fetchone()[0] == 0:
                return []
            cur.execute("SHOW GRANTS FOR %s@'%%'", (user,))
            # The password hash is part of the first grant: digested, never returned.
            return sorted(row[0] for row in cur.fetchall())
    finally:
        conn.close()


def is_healthy(observed: dict[str, Any], schema_version: int) -> bool:
    """Every object there and a writable server at ``schema_version`` that the user logs in to."""
    server = observed["server"]
    return (
        all(version is not None for version in observed["objects"].values())
        and bool(observed["claims"])
        and bool(observed["service_addresses"])
        and server.get("reachable") is True
        and server.get("read_only") is False
        and server.get("schema_version") == schema_version
        and observed["user_login"] == "ok"
    )


def digest_of(observed: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(observed, sort_keys=True, default=str).encode()).hexdigest()

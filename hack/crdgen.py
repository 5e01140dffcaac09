"""Generates the CustomResourceDefinitions in deploy/crd/bases, and docs/api.md, from one description.

The three CRDs share schema pieces (backup destinations, conditions, object references), so
they are composed here rather than copied by hand. `make crds` rewrites the files;
tests/unit/test_crds.py fails when the committed files differ from what this prints.

Usage: python hack/crdgen.py [--check]
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

import yaml

GROUP = "example.com"
VERSION = "v1alpha1"
OUT = pathlib.Path(__file__).resolve().parent.parent / "deploy" / "crd" / "bases"

Schema = dict[str, Any]

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


def string(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


def integer(description: str, **extra: Any) -> Schema:
    return {"type": "integer", "description": description, **extra}


def boolean(description: str, default: bool) -> Schema:
    return {"type": "boolean", "description": description, "default": default}


def obj(description: str, properties: dict[str, Schema], **extra: Any) -> Schema:
    return {"type": "object", "description": description, "properties": properties, **extra}


def object_name(what: str) -> Schema:
    return string(f"Name of {what}.", minLength=1, maxLength=253, pattern=DNS_SUBDOMAIN)


def quantity(description: str, **extra: Any) -> Schema:
    return {
        "description": description,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
        "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$",  # noqa: E501
        **extra,
    }


def secret_key_selector(description: str, default_key: str) -> Schema:
    return obj(
        description,
        {"name": object_name("the Secret"), "key": string("Key in the Secret.", default=default_key)},
        required=["name"],
    )


def s3_location(key_description: str, key_field: str) -> Schema:
    """S3-compatible object storage: where a backup goes (prefix) or is (key)."""
    return obj(
        "S3-compatible object storage (AWS S3, MinIO, Ceph RGW ...).",
        {
            "bucket": string(
                "Bucket name (3 to 63 characters, lower case).",
                minLength=3,
                maxLength=63,
                pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
            ),
            key_field: string(key_description, maxLength=1024),
            "endpoint": string(
                "Endpoint URL, for example https://minio.storage.svc:9000. Empty means AWS S3.",
                pattern=r"^https?://[^\s]+$",
            ),
            "region": string("Region of the bucket.", default="us-east-1"),
            "forcePathStyle": boolean(
                "Address the bucket in the URL path (needed by MinIO and most S3-compatible stores).", True
            ),
            "credentialsSecret": obj(
                "Secret holding the access key pair. Its values never reach the operator's logs.",
                {
                    "name": object_name("the Secret, in the same namespace"),
                    "accessKeyIdKey": string("Key holding the access key id.", default="access-key-id"),
                    "secretAccessKeyKey": string(
                        "Key holding the secret access key.", default="secret-access-key"
                    ),
                },
                required=["name"],
            ),
        },
        required=["bucket", "credentialsSecret"],
    )


def volume_location(path_description: str) -> Schema:
    return obj(
        "A directory on a volume mounted into the operator pod (deploy/overlays/backup-volume mounts one).",
        {"path": string(path_description, minLength=1, pattern=r"^/.*")},
        required=["path"],
    )


EXACTLY_ONE_DESTINATION = {
    "rule": "has(self.s3) != has(self.volume)",
    "message": "set exactly one of s3 or volume",
}


def destination(description: str) -> Schema:
    return obj(
        description,
        {
            "s3": s3_location(
                "Key prefix; each backup is stored under <prefix>/<namespace>/<simpledb>/<backup>/.", "prefix"
            ),
            "volume": volume_location("Directory under which each backup gets its own folder."),
        },
        **{"x-kubernetes-validations": [EXACTLY_ONE_DESTINATION]},
    )


def conditions() -> Schema:
    condition = obj(
        "A condition. The operator runtime also writes Running, Successful and Failure (with ansibleResult).",
        {
            "type": string("Condition type: Ready, Progressing, Degraded, Running, Successful, Failure."),
            "status": string("True, False or Unknown.", enum=["True", "False", "Unknown"]),
            "reason": string("One-word CamelCase reason."),
            "message": string("Human-readable detail."),
            "lastTransitionTime": string("When the status last changed.", format="date-time"),
            "observedGeneration": integer("The spec generation the condition describes.", format="int64"),
        },
        required=["type", "status"],
        **{"x-kubernetes-preserve-unknown-fields": True},
    )
    return {
        "type": "array",
        "description": "Conditions, merged by type.",
        "items": condition,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
    }


def status(description: str, properties: dict[str, Schema]) -> Schema:
    # Unknown status keys are preserved: the operator runtime and later versions add keys.
    return obj(
        description,
        {"conditions": conditions(), "message": string("What is happening, in words."), **properties},
        **{"x-kubernetes-preserve-unknown-fields": True},
    )


IMMUTABLE_SPEC = {
    "rule": "self == oldSelf",
    "message": "spec is immutable: create a new object instead",
}


def simpledb_spec() -> Schema:
    def resource_map(description: str) -> Schema:
        return {
            "type": "object",
            "description": description,
            "additionalProperties": quantity("A quantity such as 500m or 1Gi."),
        }

    return obj(
        "Desired state of a MariaDB database.",
        {
            "version": integer(
                "Desired application schema version. Migrations 1..version from `migrations` are applied "
                "in order; without a migrations source the version is recorded as the baseline. "
                "0 or absent: no migrations. Lowering it is refused.",
                minimum=0,
                format="int64",
            ),
            "migrations": obj(
                "Where the schema migrations (DDL) come from.",
                {
                    "configMapRef": obj(
                        "A ConfigMap whose keys are named V<N>__<description>.sql.",
                        {"name": object_name("the ConfigMap, in the same namespace")},
                        required=["name"],
                    )
                },
                required=["configMapRef"],
            ),
            "engine": obj(
                "The MariaDB server. Changing it is a rolling engine upgrade; downgrades and skipped "
                "major versions are refused.",
                {
                    "version": string(
                        "MariaDB version (major.minor or major.minor.patch), for example 11.4. "
                        "Default: the operator's RELATED_IMAGE_MARIADB (the official image of 11.4).",
                        pattern=r"^[0-9]{1,2}\.[0-9]{1,2}(\.[0-9]{1,3})?$",
                    ),
                    "image": string(
                        "Full image reference; overrides version. Its tag should name the version.",
                        minLength=1,
                    ),
                },
            ),
            "replicas": integer(
                "Number of servers: 1 is a standalone server; more is one primary plus asynchronous "
                "GTID replicas. At most 9.",
                minimum=1,
                maximum=9,
                default=1,
            ),
            "replication": obj(
                "Failover and switchover of the primary when replicas > 1 (see docs/replication.md).",
                {
                    "autoFailover": boolean(
                        "Promote the most advanced replica when the primary's pod is gone, or not Ready "
                        "for failoverGracePeriodSeconds.",
                        True,
                    ),
                    "failoverGracePeriodSeconds": integer(
                        "How long the primary's pod may stay not Ready before a failover. A deleted or "
                        "replaced pod fails over at once.",
                        minimum=0,
                        default=10,
                    ),
                    "rebuildDiverged": boolean(
                        "Rebuild a replica that diverged (it holds transactions the primary lacks, typically "
                        "a failed primary that returned) by cloning the primary, which discards those "
                        "transactions; the Event and the replica's status message name their GTIDs. False "
                        "leaves it Diverged and out of service until it is rebuilt.",
                        False,
                    ),
                    "switchoverTo": integer(
                        "Request a switchover: the ordinal of the pod that should become the primary. The "
                        "operator switches over once per new value (status.replication.switchoverTo records "
                        "the last request done); a failover does not reset it.",
                        minimum=0,
                        maximum=8,
                    ),
                    "switchoverTimeoutSeconds": integer(
                        "How long a switchover waits for the new primary to apply every write before it is "
                        "cancelled (the old primary then accepts writes again).",
                        minimum=1,
                        default=60,
                    ),
                },
                default={},
            ),
            "storage": obj(
                "The data volume of each server.",
                {
                    "size": quantity(
                        "Size of each server's volume. It can grow (where the storage class allows "
                        "expansion) but never shrink.",
                        default="1Gi",
                        **{
                            "x-kubernetes-validations": [
                                {
                                    "rule": "quantity(string(self)).isGreaterThan(quantity('0'))",
                                    "message": "must be a positive quantity such as 1Gi",
                                }
                            ]
                        },
                    ),
                    "storageClassName": string(
                        "Storage class of the volumes; empty means the cluster default.", maxLength=253
                    ),
                },
                default={},
                **{
                    "x-kubernetes-validations": [
                        {
                            "rule": "!has(self.size) || !has(oldSelf.size) || "
                            "quantity(string(self.size)).compareTo(quantity(string(oldSelf.size))) >= 0",
                            "message": "storage.size cannot shrink",
                            "fieldPath": ".size",
                            "reason": "FieldValueForbidden",
                        },
                        {
                            "rule": "(has(self.storageClassName) ? self.storageClassName : '') == "
                            "(has(oldSelf.storageClassName) ? oldSelf.storageClassName : '')",
                            "message": "storage.storageClassName is immutable",
                            "fieldPath": ".storageClassName",
                        },
                    ]
                },
            ),
            "database": string(
                "Application database name. Default: the object's name with '-' replaced by '_'.",
                pattern=r"^[A-Za-z0-9_$]{1,64}$",
            ),
            "user": string(
                "Application user, granted all privileges on the database.",
                default="app",
                pattern=r"^[A-Za-z0-9_]{1,80}$",
                **{"x-kubernetes-validations": [{"rule": "self != 'root'", "message": "must not be root"}]},
            ),
            "credentialsSecret": string(
                "Existing Secret with keys root-password and password. Without it the operator "
                "creates <name>-credentials once, with random passwords, and never regenerates them.",
                maxLength=253,
                pattern=DNS_SUBDOMAIN,
            ),
            "resources": obj(
                "CPU and memory of the MariaDB container.",
                {
                    "requests": resource_map("Resources reserved for the container (cpu, memory)."),
                    "limits": resource_map("The most the container may use (cpu, memory)."),
                },
            ),
            "config": string(
                "Extra my.cnf lines for the [mariadbd] section, for example "
                "'max_connections = 500'. Applied with a rolling restart.",
                maxLength=65536,
            ),
            "paused": boolean("Stop reconciling changes; status keeps being reported.", False),
            "deletionPolicy": string(
                "What deleting the SimpleDB does to its data. Retain keeps the volumes and the "
                "credentials Secret; Delete removes them.",
                enum=["Retain", "Delete"],
                default="Retain",
            ),
            "backupBeforeDelete": boolean(
                "Take a final backup to backup.destination before deleting.", False
            ),
            "backup": obj(
                "Scheduled backups.",
                {
                    "schedule": string(
                        "Cron schedule in UTC (five fields, or @hourly, @daily, @weekly, @monthly).",
                        pattern=r"^(@(hourly|daily|weekly|monthly|yearly|annually))$|^(\S+\s+){4}\S+$",
                    ),
                    "destination": destination("Where scheduled and pre-upgrade backups go."),
                    "compression": string(
                        "Compression of the data file.", enum=["gzip", "none"], default="gzip"
                    ),
                    "retention": obj(
                        "Which scheduled backups to keep; older ones are deleted with their artifacts.",
                        {
                            "count": integer("Keep at most this many.", minimum=1, default=7),
                            "maxAge": string(
                                "Delete backups older than this, for example 720h or 30d.",
                                pattern=r"^[0-9]+(h|d)$",
                            ),
                        },
                    ),
                    "missedSchedulePolicy": string(
                        "When the operator was down at a scheduled time: Skip it, or RunOnce on return.",
                        enum=["Skip", "RunOnce"],
                        default="RunOnce",
                    ),
                },
                required=["destination"],
            ),
        },
        **{
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.replication) || !has(self.replication.switchoverTo) || "
                    "self.replication.switchoverTo < (has(self.replicas) ? self.replicas : 1)",
                    "message": "replication.switchoverTo must be the ordinal of a pod, below replicas",
                    "fieldPath": ".replication.switchoverTo",
                },
                {
                    "rule": "!has(self.backupBeforeDelete) || !self.backupBeforeDelete || has(self.backup)",
                    "message": "backupBeforeDelete needs backup.destination",
                    "fieldPath": ".backupBeforeDelete",
                },
            ]
        },
    )


def simpledb_status() -> Schema:
    return status(
        "Observed state, written by the operator.",
        {
            "phase": string(
                "Lifecycle phase.",
                enum=[
                    "Pending",
                    "Creating",
                    "Ready",
                    "Upgrading",
                    "Restoring",
                    "Degraded",
                    "Paused",
                    "Deleting",
                ],
            ),
            "observedGeneration": integer("The spec generation last reconciled.", format="int64"),
            "engineVersion": string("Version the server reports (SELECT VERSION())."),
            "image": string("Image the StatefulSet runs."),
            "schemaVersion": integer("Highest migration applied, from the history table.", format="int64"),
            "endpoint": string("host:port of the client Service."),
            "secretName": string("Secret with the credentials."),
            "convergedDigest": string(
                "Digest of what the last run that found everything converged observed (spec, operator "
                "settings, child objects, server); a run that observes the same has nothing to do."
            ),
            "currentPrimary": string("Name of the pod that is the primary (accepts writes)."),
            "replicas": {
                "type": "array",
                "description": "The replicas (replicas > 1): each one's replication state and lag.",
                "items": obj(
                    "A replica.",
                    {
                        "name": string("Pod name."),
                        "state": string(
                            "Streaming (caught up; serves reads through <name>-replicas), CatchingUp, "
                            "Connecting, Error (a replication thread stopped), Diverged (it holds writes the "
                            "primary lacks: rebuild it), NotSeedable or Unreachable.",
                        ),
                        "lagSeconds": integer("Seconds behind the primary (Seconds_Behind_Master)."),
                        "message": string("The state in words."),
                    },
                ),
            },
            "replication": obj(
                "What the operator records about the replication.",
                {
                    "primaryUID": string("UID of the primary's pod; another UID means the pod was replaced."),
                    "switchoverTo": integer("The last spec.replication.switchoverTo request done."),
                    "lastFailover": obj(
                        "The latest automatic failover.",
                        {
                            "from": string("The lost primary."),
                            "to": string("The promoted replica."),
                            "position": string("Its GTID position when promoted."),
                            "time": string("When.", format="date-time"),
                        },
                    ),
                },
            ),
            "lastBackup": obj(
                "The latest successful backup.",
                {
                    "name": string("SimpleDBBackup name."),
                    "completionTime": string("When it finished.", format="date-time"),
                    "location": string("Where it is stored."),
                },
            ),
        },
    )


def backup_spec() -> Schema:
    return obj(
        "A one-shot logical backup. It runs once; a finished backup is never redone.",
        {
            "simpleDB": object_name("the SimpleDB to back up, in the same namespace"),
            "destination": destination("Where the backup goes."),
            "compression": string("Compression of the data file.", enum=["gzip", "none"], default="gzip"),
            "deleteArtifactOnDelete": boolean("Delete the stored backup when this object is deleted.", False),
        },
        required=["simpleDB", "destination"],
        **{"x-kubernetes-validations": [IMMUTABLE_SPEC]},
    )


def backup_status() -> Schema:
    return status(
        "Result of the backup.",
        {
            "phase": string("Lifecycle phase.", enum=["Pending", "Running", "Succeeded", "Failed"]),
            "startTime": string("When the backup started.", format="date-time"),
            "completionTime": string("When it finished.", format="date-time"),
            "location": string("Where the manifest is stored (s3://bucket/key or a path)."),
            "size": integer("Size of the data file in bytes.", format="int64"),
            "sha256": string("SHA-256 of the data file."),
            "tables": integer("Number of tables.", format="int64"),
            "rows": integer("Number of rows.", format="int64"),
            "engineVersion": string("Server version at backup time."),
            "schemaVersion": integer("Schema version at backup time.", format="int64"),
        },
    )


def restore_spec() -> Schema:
    return obj(
        "Restore a backup into a running SimpleDB. Runs once.",
        {
            "simpleDB": object_name("the target SimpleDB, in the same namespace"),
            "backup": object_name("a Succeeded SimpleDBBackup in the same namespace"),
            "source": obj(
                "A backup's location, for backups made elsewhere.",
                {
                    "s3": s3_location("Key of the backup's manifest.json.", "key"),
                    "volume": volume_location("Path of the backup's manifest.json."),
                },
                **{"x-kubernetes-validations": [EXACTLY_ONE_DESTINATION]},
            ),
        },
        required=["simpleDB"],
        **{
            "x-kubernetes-validations": [
                IMMUTABLE_SPEC,
                {
                    "rule": "has(self.backup) != has(self.source)",
                    "message": "set exactly one of backup or source",
                },
            ]
        },
    )


def restore_status() -> Schema:
    return status(
        "Result of the restore.",
        {
            "phase": string("Lifecycle phase.", enum=["Pending", "Running", "Succeeded", "Failed"]),
            "startTime": string("When the restore started.", format="date-time"),
            "completionTime": string("When it finished.", format="date-time"),
            "restoredFrom": string("Location of the restored backup."),
            "tables": integer("Tables restored.", format="int64"),
            "rows": integer("Rows restored.", format="int64"),
            "verified": {
                "type": "boolean",
                "description": "Row counts and table checksums matched the backup's manifest.",
            },
        },
    )


def column(name: str, path: str, kind: str = "string", priority: int = 0, description: str = "") -> Schema:
    col = {"name": name, "type": kind, "jsonPath": path}
    if priority:
        col["priority"] = priority
    if description:
        col["description"] = description
    return col


AGE = column("Age", ".metadata.creationTimestamp", "date")


def crd(
    kind: str,
    plural: str,
    short: str,
    description: str,
    spec: Schema,
    status_schema: Schema,
    columns: list[Schema],
    spec_required: bool = False,
) -> Schema:
    root = obj(
        description,
        {
            "apiVersion": string("API version of the object."),
            "kind": string("Kind of the object."),
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status_schema,
        },
    )
    if spec_required:
        root["required"] = ["spec"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["simpledb"],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [*columns, AGE],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def definitions() -> dict[str, Schema]:
    ready = '.status.conditions[?(@.type=="Ready")].status'
    return {
        "example.com_simpledbs.yaml": crd(
            "SimpleDB",
            "simpledbs",
            "sdb",
            "SimpleDB is a MariaDB database run by the SimpleDB operator.",
            simpledb_spec(),
            simpledb_status(),
            [
                column("Ready", ready),
                column("Phase", ".status.phase"),
                column("Engine", ".status.engineVersion"),
                column("Schema", ".status.schemaVersion", "integer"),
                column("Primary", ".status.currentPrimary", priority=1),
                column("Endpoint", ".status.endpoint", priority=1),
                column("Message", ".status.message", priority=1),
            ],
        ),
        "example.com_simpledbbackups.yaml": crd(
            "SimpleDBBackup",
            "simpledbbackups",
            "sdbb",
            "SimpleDBBackup is a one-shot logical backup of a SimpleDB.",
            backup_spec(),
            backup_status(),
            [
                column("Database", ".spec.simpleDB"),
                column("Phase", ".status.phase"),
                column("Size", ".status.size", "integer"),
                column("Rows", ".status.rows", "integer", priority=1),
                column("Location", ".status.location", priority=1),
                column("Message", ".status.message", priority=1),
            ],
            spec_required=True,
        ),
        "example.com_simpledbrestores.yaml": crd(
            "SimpleDBRestore",
            "simpledbrestores",
            "sdbr",
            "SimpleDBRestore restores a backup into a running SimpleDB, verifying it first.",
            restore_spec(),
            restore_status(),
            [
                column("Database", ".spec.simpleDB"),
                column("Phase", ".status.phase"),
                column("Verified", ".status.verified", "boolean"),
                column("From", ".status.restoredFrom", priority=1),
                column("Message", ".status.message", priority=1),
            ],
            spec_required=True,
        ),
    }


HEADER = "# Generated by hack/crdgen.py: edit that file and run `make crds`, not this one.\n"
DOCS = OUT.parent.parent.parent / "docs" / "api.md"


def field_rows(schema: Schema, path: str) -> list[str]:
    """Markdown rows for every field under schema: path, type, default and rules, description."""
    rows = []
    required = set(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        where = f"{path}.{name}" if path else name
        kind = sub.get("type", "int or string" if sub.get("x-kubernetes-int-or-string") else "any")
        if kind == "array":
            kind = f"list of {sub['items'].get('type', 'any')}"
        notes = []
        if name in required:
            notes.append("required")
        if "default" in sub:
            notes.append(f"default `{json.dumps(sub['default'])}`")
        if "enum" in sub:
            notes.append("one of " + ", ".join(f"`{v}`" for v in sub["enum"]))
        for bound, word in (("minimum", "≥"), ("maximum", "≤")):
            if bound in sub:
                notes.append(f"{word} {sub[bound]}")
        notes += [rule["message"] for rule in sub.get("x-kubernetes-validations", [])]
        rows.append(f"| `{where}` | {kind} | {'; '.join(notes)} | {sub.get('description', '')} |")
        if sub.get("type") == "object" and name != "conditions":
            rows += field_rows(sub, where)
    return rows


def render_docs() -> str:
    out = [
        "# API reference: example.com/v1alpha1",
        "",
        "Generated by `hack/crdgen.py` from the same source as the CRDs (`make crds`). "
        "`kubectl explain simpledb.spec` shows the same descriptions.",
    ]
    for doc in definitions().values():
        names = doc["spec"]["names"]
        schema = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        out += ["", f"## {names['kind']} (short name `{names['shortNames'][0]}`)", "", schema["description"]]
        for part in ("spec", "status"):
            sub = schema["properties"][part]
            rules = [rule["message"] for rule in sub.get("x-kubernetes-validations", [])]
            summary = sub["description"] + (" Rules: " + "; ".join(rules) + "." if rules else "")
            out += ["", f"### {part}", "", summary]
            out += ["", "| Field | Type | Rules | Description |", "|---|---|---|---|", *field_rows(sub, part)]
    return "\n".join(out) + "\n"


def render(doc: Schema) -> str:
    return HEADER + "---\n" + yaml.safe_dump(doc, sort_keys=False, width=100, allow_unicode=True)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, doc in definitions().items():
        path = OUT / name
        text = render(doc)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    docs = render_docs()
    if check and (not DOCS.exists() or DOCS.read_text() != docs):
        stale.append(str(DOCS))
    elif not check:
        DOCS.write_text(docs)
    if stale:
        print("out of date (run `make crds`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

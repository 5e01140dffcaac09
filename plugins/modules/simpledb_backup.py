#!/usr/bin/python
"""Ansible module: consistent logical backup of a MariaDB database (SimpleDB)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: simpledb_backup
short_description: Take a consistent, compressed logical backup of a MariaDB database
description:
  - Dumps one database from a running MariaDB server into a plain SQL file that the stock
    C(mariadb) client can load (C(gunzip -c FILE.sql.gz | mariadb DB)), plus a JSON manifest
    with every table's row count and C(CHECKSUM TABLE ... EXTENDED) value, the objects, the
    engine and schema versions and the data file's sha256.
  - All rows come from one consistent snapshot (C(START TRANSACTION WITH CONSISTENT SNAPSHOT)).
    With several O(jobs), a brief C(FLUSH TABLES WITH READ LOCK) lets every connection open
    the same snapshot; tables of non-transactional engines (MyISAM, Aria) are dumped while
    that lock is held.
  - Covers every column type, generated and invisible columns, system-versioned tables with
    their history, sequences, views, triggers, functions, procedures and events.
    DEFINER clauses are kept as they are, like C(mariadb-dump).
  - Memory stays bounded whatever the table sizes; see docs/backup-format.md.
  - The backup goes into a directory (O(path)) or S3-compatible object storage (O(s3)).
  - The artifact appears only when complete; a failed backup leaves nothing behind.
version_added: "0.1.0"
author: SimpleDB operator authors
options:
  database:
    description: The database to back up.
    type: str
    required: true
  path:
    description:
      - Directory (for example a mounted volume) the backup is written into. Created if missing.
      - One of O(path) and O(s3) is required.
    type: path
  name:
    description:
      - Backup name; the files are C(<name>.sql.gz) (or C(.sql)) and C(<name>.manifest.json).
      - Default C(<database>-<UTC time as YYYYmmddTHHMMSSZ>).
    type: str
  compression:
    description: Compression of the data file.
    type: str
    choices: [gzip, none]
    default: gzip
  compression_level:
    description: gzip level (1 fastest, 9 smallest).
    type: int
    default: 6
  jobs:
    description:
      - Connections dumping in parallel. More than one needs the RELOAD privilege for the
        brief global read lock that makes their snapshots identical.
    type: int
    default: 2
  lock_wait_timeout:
    description:
      - Seconds to wait for the global read lock (taken only with several O(jobs) or
        non-transactional tables) before giving up, so a long query cannot stall the server.
    type: int
    default: 60
  overwrite:
    description: Replace an existing backup of the same name instead of failing.
    type: bool
    default: false
extends_documentation_fragment:
  - simpledb_login
  - simpledb_s3
notes:
  - Check mode connects, checks the database exists and reports where the backup would go.
  - The backup user needs SELECT, SHOW VIEW, TRIGGER, EVENT and LOCK TABLES on the
    database, SELECT on mysql.proc for routine bodies, and RELOAD when O(jobs) > 1.
"""

EXAMPLES = r"""
- name: Back up the application database onto the backup volume
  simpledb_backup:
    login_host: simpledb-0.simpledb-headless.apps.svc.cluster.local
    login_password: "{{ root_password }}"
    database: shop
    path: /backups
  register: backup

- name: Uncompressed backup with a fixed name, one connection
  simpledb_backup:
    login_password: "{{ root_password }}"
    database: shop
    path: /backups
    name: shop-before-upgrade
    compression: none
    jobs: 1

- name: Back up to S3-compatible storage, credentials from a Secret read earlier
  simpledb_backup:
    login_password: "{{ root_password }}"
    database: shop
    name: shop-nightly
    s3:
      bucket: db-backups
      prefix: simpledb/apps/shop/shop-nightly
      endpoint: https://minio.storage.svc:9000
      access_key: "{{ s3_secret.data['access-key-id'] | b64decode }}"
      secret_key: "{{ s3_secret.data['secret-access-key'] | b64decode }}"
  no_log: true
"""

RETURN = r"""
location:
  description: Where the data file is (a path, or C(s3://bucket/key)).
  returned: success
  type: str
  sample: /backups/shop-20250101T000000Z.sql.gz
manifest:
  description: Where the manifest is.
  returned: success
  type: str
  sample: /backups/shop-20250101T000000Z.manifest.json
name:
  description: The backup name (restore takes it, or the location).
  returned: success
  type: str
size:
  description: Bytes of the data file.
  returned: success
  type: int
sha256:
  description: sha256 of the data file.
  returned: success
  type: str
tables:
  description: Number of tables (sequences not counted).
  returned: success
  type: int
rows:
  description: Rows in all tables (history rows of versioned tables included).
  returned: success
  type: int
engine_version:
  description: VERSION() of the server that was backed up.
  returned: success
  type: str
schema_version:
  description: Highest successful version in simpledb_schema_history, null without one.
  returned: success
  type: int
duration:
  description: Seconds the backup took.
  returned: success
  type: float
progress:
  description: One line per table dumped (table, rows, tables done, bytes so far).
  returned: success
  type: list
  elements: str
"""

import datetime
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.simpledb.allocator import keep_buffers_for_reuse
from ansible.module_utils.simpledb.connection import (
    ConnectionFailed,
    connect_from_params,
    connection_argument_spec,
    require_pymysql,
)
from ansible.module_utils.simpledb.dump import BackupError, Dumper, DumpOptions
from ansible.module_utils.simpledb.manifest import data_name, manifest_name
from ansible.module_utils.simpledb.storage import StorageError, storage_argument_spec, storage_from_params


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        database={"type": "str", "required": True},
        **storage_argument_spec(),
        name={"type": "str"},
        compression={"type": "str", "choices": ["gzip", "none"], "default": "gzip"},
        compression_level={"type": "int", "default": 6},
        jobs={"type": "int", "default": 2},
        lock_wait_timeout={"type": "int", "default": 60},
        overwrite={"type": "bool", "default": False},
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("path", "s3")],
        required_one_of=[("path", "s3")],
        supports_check_mode=True,
    )
    require_pymysql(module)
    params = module.params
    if not 1 <= params["jobs"] <= 64:
        module.fail_json(msg="jobs must be between 1 and 64")
    if not 1 <= params["compression_level"] <= 9:
        module.fail_json(msg="compression_level must be between 1 and 9")
    name = params["name"] or (
        params["database"] + "-" + datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    )
    if "/" in name or name.startswith("."):
        module.fail_json(msg=f"name {name!r} must be a plain file name (no '/', not starting with '.')")

    def connect(**kwargs):
        return connect_from_params(params, read_timeout=None, **kwargs)

    data_file = data_name(name, params["compression"])
    try:
        if module.check_mode:
            location = (
                os.path.join(params["path"], data_file)
                if params["path"]
                else storage_from_params(params).location(data_file)
            )
            _check(module, params, connect, location, name)
        storage = storage_from_params(params, create=True)
        existing = [n for n in (manifest_name(name), data_file) if storage.exists(n)]
        if existing and not params["overwrite"]:
            module.fail_json(
                msg=f"A backup named {name!r} already exists at {storage.location(existing[0])}: "
                "choose another name or set overwrite: true"
            )
        progress = []

        def report(event):
            progress.append(
                f"{event['table']}: {event['rows']} rows "
                f"({event['tables_done']} tables, {event['bytes']} bytes so far)"
            )

        options = DumpOptions(
            jobs=params["jobs"],
            compression=params["compression"],
            compression_level=params["compression_level"],
            lock_wait_timeout=params["lock_wait_timeout"],
        )
        keep_buffers_for_reuse()
        result = Dumper(connect, params["database"], options, report).run(storage, name)
    except (ConnectionFailed, BackupError, StorageError) as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # a bug must still end in a message, not a traceback
        module.fail_json(msg=f"The backup failed unexpectedly: {type(exc).__name__}: {exc}")
    manifest = result["manifest"]
    tables = [t for t in manifest["tables"] if t["kind"] == "table"]
    module.exit_json(
        changed=True,
        name=name,
        location=result["location"],
        manifest=result["manifest_location"],
        size=manifest["data"]["size"],
        sha256=manifest["data"]["sha256"],
        tables=len(tables),
        rows=sum(t["rows"] for t in tables),
        engine_version=manifest["engine_version"],
        schema_version=manifest["schema_version"],
        duration=manifest["timings"]["total_seconds"],
        progress=progress,
    )


def _check(module, params, connect, location, name):
    """Check mode: the server answers and has the database; nothing is written."""
    conn = connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (params["database"],)
            )
            found = cur.fetchone() is not None
    finally:
        conn.close()
    if not found:
        module.fail_json(msg=f"The database '{params['database']}' does not exist on the server")
    module.exit_json(changed=True, name=name, location=location)


if __name__ == "__main__":
    main()

#!/usr/bin/python
"""Ansible module: verified restore of a SimpleDB logical backup into a MariaDB database."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: simpledb_restore
short_description: Restore a SimpleDB logical backup, verified against its manifest
description:
  - Restores a backup written by M(simpledb_backup) into a database of a running server.
  - The data file's size and sha256 are checked against the manifest before anything on
    the server changes; a missing, truncated or altered file fails with nothing changed.
  - The backup is loaded into a staging database C(<database>__sdb_restore) (rows in
    parallel over O(jobs) connections), then every table's row count and
    C(CHECKSUM TABLE ... EXTENDED) and every sequence's next value are compared with the
    manifest. Only when all match does one atomic C(RENAME TABLE) swap the restored tables
    in; the database's views, routines, triggers and events are then replaced by the
    backup's. On a mismatch the target database is left exactly as it was.
  - The target database ends up as the backup describes it; tables that exist only in the
    target are removed with the rest of its previous content.
  - If the swap itself fails, the previous tables are kept in C(<database>__sdb_previous),
    the server stays read-only and the error says so; a later restore refuses to run until
    that database is dealt with.
version_added: "0.1.0"
author: SimpleDB operator authors
options:
  location:
    description:
      - The backup's data file or manifest, as M(simpledb_backup) returned it
        (for example C(/backups/shop-20250101T000000Z.sql.gz)), a path or C(s3://bucket/key).
      - An C(s3://) location needs O(s3) for the endpoint and credentials.
    type: str
    required: true
  database:
    description: Database to restore into. Default the database the backup was taken from.
    type: str
  read_only:
    description:
      - Make the server read-only (C(SET GLOBAL read_only=1)) while restoring, and put the
        previous setting back afterwards. The restore user needs READ_ONLY ADMIN to write
        while the server is read-only (on MariaDB 10.11 SUPER alone no longer allows it).
    type: bool
    default: true
  jobs:
    description: Connections loading rows and checking tables in parallel.
    type: int
    default: 2
extends_documentation_fragment:
  - simpledb_login
  - simpledb_s3
notes:
  - Check mode verifies the artifact against its manifest and connects, changing nothing.
  - The restore user needs ALL on the target database and on the C(__sdb_restore) and
    C(__sdb_previous) databases beside it, SUPER or SET USER to create objects with another
    DEFINER, and READ_ONLY ADMIN with O(read_only=true).
"""

EXAMPLES = r"""
- name: Restore the last backup into the application database
  simpledb_restore:
    login_host: simpledb-0.simpledb-headless.apps.svc.cluster.local
    login_password: "{{ root_password }}"
    location: "{{ backup.location }}"
  register: restore

- name: Restore a copy into another database, leaving the server writable
  simpledb_restore:
    login_password: "{{ root_password }}"
    location: /backups/shop-20250101T000000Z.manifest.json
    database: shop_copy
    read_only: false

- name: Restore from S3-compatible storage
  simpledb_restore:
    login_password: "{{ root_password }}"
    location: s3://db-backups/simpledb/apps/shop/shop-nightly/shop-nightly.manifest.json
    s3:
      endpoint: https://minio.storage.svc:9000
      access_key: "{{ s3_secret.data['access-key-id'] | b64decode }}"
      secret_key: "{{ s3_secret.data['secret-access-key'] | b64decode }}"
  no_log: true
"""

RETURN = r"""
database:
  description: The database that was restored into.
  returned: always
  type: str
restored_from:
  description: The backup's data file.
  returned: always
  type: str
tables:
  description: Tables restored (sequences not counted).
  returned: success
  type: int
rows:
  description: Rows restored, history rows included.
  returned: success
  type: int
verified:
  description: Whether every table's row count and checksum matched the manifest.
  returned: always
  type: bool
mismatches:
  description: What did not match the manifest (empty on success).
  returned: always
  type: list
  elements: str
state:
  description:
    - On failure, what the target database looks like now. C(unchanged) the target was not
      touched; C(swapping) the swap failed part-way (see the message); C(objects-missing)
      the tables were restored but some views, routines, triggers or events are missing.
  returned: failure
  type: str
engine_version:
  description: VERSION() of the server restored into.
  returned: success
  type: str
backup_engine_version:
  description: VERSION() of the server the backup was taken from.
  returned: success
  type: str
schema_version:
  description: The schema version recorded in the backup.
  returned: success
  type: int
duration:
  description: Seconds the restore took.
  returned: success
  type: float
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.simpledb.allocator import keep_buffers_for_reuse
from ansible.module_utils.simpledb.connection import (
    ConnectionFailed,
    connect_from_params,
    connection_argument_spec,
    require_pymysql,
)
from ansible.module_utils.simpledb.load import RestoreError, RestoreOptions, Restorer, verify_artifact
from ansible.module_utils.simpledb.manifest import backup_name_of
from ansible.module_utils.simpledb.storage import StorageError, storage_argument_spec, storage_for_location


def main():
    argument_spec = connection_argument_spec()
    argument_spec.update(
        location={"type": "str", "required": True},
        database={"type": "str"},
        read_only={"type": "bool", "default": True},
        jobs={"type": "int", "default": 2},
        s3=storage_argument_spec()["s3"],
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    require_pymysql(module)
    params = module.params
    if not 1 <= params["jobs"] <= 64:
        module.fail_json(msg="jobs must be between 1 and 64")
    failure = {
        "database": params["database"],
        "restored_from": params["location"],
        "verified": False,
        "mismatches": [],
    }

    def connect(**kwargs):
        return connect_from_params(params, read_timeout=None, **kwargs)

    try:
        storage, object_name = storage_for_location(params["location"], params["s3"])
        restorer = Restorer(
            connect,
            storage,
            backup_name_of(object_name),
            params["database"],
            RestoreOptions(jobs=params["jobs"], read_only=params["read_only"]),
        )
        failure["database"] = restorer.database
        failure["restored_from"] = storage.location(restorer.manifest["data"]["name"])
        if module.check_mode:
            verify_artifact(storage, restorer.manifest)
            connect().close()
            module.exit_json(
                changed=True, verified=False, mismatches=[], **_without(failure, "verified", "mismatches")
            )
        keep_buffers_for_reuse()
        result = restorer.run()
    except RestoreError as exc:
        module.fail_json(
            msg=str(exc), state=exc.state or "unchanged", **{**failure, "mismatches": exc.mismatches}
        )
    except (ConnectionFailed, StorageError) as exc:
        module.fail_json(msg=f"{exc}. Nothing was changed", state="unchanged", **failure)
    except Exception as exc:  # a bug must still end in a message, not a traceback
        module.fail_json(msg=f"The restore failed unexpectedly: {type(exc).__name__}: {exc}", **failure)
    module.exit_json(changed=True, restored_from=failure["restored_from"], **result)


def _without(values, *keys):
    return {k: v for k, v in values.items() if k not in keys}


if __name__ == "__main__":
    main()

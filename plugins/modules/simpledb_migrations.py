#!/usr/bin/python
"""Ansible module simpledb_migrations: versioned schema migrations with a history table."""

DOCUMENTATION = r"""
module: simpledb_migrations
short_description: Apply versioned SQL migrations to a MariaDB database
description:
  - Applies the migrations C(V1__<description>.sql), C(V2__...) ... in order, up to
    O(target_version), to O(database), and records each attempt in a history table in that
    database (version, description, checksum, when, how long, by whom, success, error).
  - The source is O(migrations) (file name to SQL text, such as a ConfigMap's C(data)) or
    O(migrations_dir) (a directory, such as a mounted ConfigMap). Without a source,
    O(target_version) is recorded as a baseline (nothing runs) so the schema version reads back.
  - It refuses, changing nothing, when the source or the history is inconsistent - a badly named
    file, two files with one version, a gap in the versions, a changed applied migration (its
    checksum), a O(target_version) lower than the applied schema version (a downgrade) - and
    when the next migration failed before and was not corrected. The message names the file
    and the version.
  - A script is split into statements like the C(mariadb) client does (quotes, comments and
    C(DELIMITER) for routines and triggers are honoured) and each statement is run in turn on a
    session of its own. MariaDB commits DDL implicitly, so a failed script is not rolled back;
    the statements before the failure stay applied. The attempt is recorded as failed and blocks
    later migrations until the file is corrected (a changed checksum is retried) or
    O(retry_failed) is set. See C(docs/migrations.md).
  - Runs against one database are serialised with a server-side lock (C(GET_LOCK)).
version_added: "0.1.0"
author: SimpleDB operator authors
extends_documentation_fragment:
  - simpledb_login
options:
  database:
    description: The application database; it must exist. The history table is created in it.
    type: str
    required: true
  target_version:
    description:
      - The schema version to reach. Migrations above the applied version run, up to this one.
      - C(0) with nothing applied does nothing.
    type: int
    required: true
  migrations:
    description:
      - Migration scripts by file name, C(V<N>__<description>.sql), for example the C(data) of a
        ConfigMap. N starts at 1 and has no gaps; the description is letters, digits, C(_), C(.)
        and C(-).
      - Mutually exclusive with O(migrations_dir).
    type: dict
  migrations_dir:
    description:
      - Directory holding the migration files. Hidden entries (such as the C(..data) links of a
        mounted ConfigMap) and subdirectories are ignored; any other file must be a migration.
      - Mutually exclusive with O(migrations).
    type: path
  history_table:
    description: Name of the history table in O(database).
    type: str
    default: simpledb_schema_history
  retry_failed:
    description:
      - Run a migration that failed (or whose run was interrupted) again although its file is
        unchanged, for example after a lock wait timeout or once the cause was fixed in the
        database by hand.
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds to wait for another run on the same database to finish before failing.
    type: int
    default: 60
notes:
  - Supports check mode, which reports the plan without touching the database (no lock is taken
    and no table is created).
  - The login user needs the privileges the scripts need, plus C(CREATE), C(INSERT), C(UPDATE)
    and C(SELECT) on the history table and C(PROCESS) to tell an interrupted migration from one
    that is still running.
seealso:
  - module: simpledb_probe
"""

EXAMPLES = r"""
- name: Read the migrations ConfigMap
  kubernetes.core.k8s_info:
    kind: ConfigMap
    name: "{{ migrations.config_map_ref.name }}"
    namespace: "{{ ansible_operator_meta.namespace }}"
  register: migrations_cm

- name: Apply the migrations up to spec.version
  simpledb_migrations:
    login_host: "{{ server_host }}"
    login_password: "{{ root_password }}"
    database: "{{ database }}"
    target_version: "{{ version }}"
    migrations: "{{ migrations_cm.resources[0].data }}"
  register: migrated
  no_log: true

- name: No migrations source - record spec.version as the baseline
  simpledb_migrations:
    login_host: "{{ server_host }}"
    login_password: "{{ root_password }}"
    database: app
    target_version: 1

- name: From a directory, showing the plan only
  simpledb_migrations:
    login_host: 127.0.0.1
    login_password: "{{ root_password }}"
    database: app
    target_version: 7
    migrations_dir: /migrations
  check_mode: true
  register: plan
"""

RETURN = r"""
schema_version_before:
  description: The schema version found (highest successful version); null without a history table.
  returned: always
  type: int
  sample: 2
schema_version_after:
  description:
    - The schema version reached; in check mode, the one the plan would reach.
    - After a failure, the version of the last migration that succeeded.
  returned: always
  type: int
  sample: 4
plan:
  description: What the run does (or would do in check mode), in order.
  returned: always
  type: list
  elements: dict
  contains:
    action:
      description: C(apply), C(retry) (a failed migration again) or C(baseline) (only recorded).
      type: str
      sample: apply
    version:
      description: The migration's version.
      type: int
      sample: 3
    description:
      description: From the file name, underscores as spaces.
      type: str
      sample: add orders index
    script:
      description: The file name; null for a baseline.
      type: str
      sample: V3__add_orders_index.sql
    checksum:
      description: sha256 of the script in hex; null for a baseline.
      type: str
      sample: 9f2c5e0b1d0c4a3f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a392817
    statements:
      description: Number of statements in the script (not for a baseline).
      type: int
      sample: 2
    reason:
      description: Why a step is a retry or a baseline.
      type: str
      sample: failed on 2026-11-26 16:35:15 UTC and was changed since
applied:
  description: The migrations this run applied, as in RV(plan) with C(duration_ms).
  returned: always
  type: list
  elements: dict
  sample:
    - action: apply
      version: 3
      description: add orders index
      script: V3__add_orders_index.sql
      checksum: 9f2c5e0b1d0c4a3f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a392817
      statements: 2
      duration_ms: 35
failure:
  description: The migration that failed, when one did.
  returned: when a migration failed
  type: dict
  contains:
    version:
      description: Its version.
      type: int
      sample: 4
    script:
      description: Its file name.
      type: str
      sample: V4__drop_legacy.sql
    statement:
      description:
        - Number of the failing statement in the script (1-based).
        - Null when the script left a transaction open.
      type: int
      sample: 2
    line:
      description: Line where the failing statement starts.
      type: int
      sample: 7
    error_code:
      description: The server's error number.
      type: int
      sample: 1091
    error:
      description: What was recorded in the history table.
      type: str
      sample: >-
        statement 2 at line 7 failed with error 1091: Can't DROP INDEX `legacy`; check that it
        exists [DROP INDEX legacy ON orders]
history_table:
  description: The history table, qualified with the database.
  returned: always
  type: str
  sample: app.simpledb_schema_history
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.simpledb.connection import (
    ConnectionFailed,
    connect_from_params,
    connection_argument_spec,
    require_pymysql,
)
from ansible.module_utils.simpledb.migrations import (
    DEFAULT_HISTORY_TABLE,
    MigrationFailed,
    MigrationRefused,
    Migrator,
    load_directory,
    load_mapping,
)

try:
    import pymysql
except ImportError:  # reported by require_pymysql()
    pymysql = None


def argument_spec():
    spec = connection_argument_spec()
    spec.update(
        database={"type": "str", "required": True},
        target_version={"type": "int", "required": True},
        migrations={"type": "dict"},
        migrations_dir={"type": "path"},
        history_table={"type": "str", "default": DEFAULT_HISTORY_TABLE},
        retry_failed={"type": "bool", "default": False},
        lock_timeout={"type": "int", "default": 60},
    )
    return spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[("migrations", "migrations_dir")],
        supports_check_mode=True,
    )
    require_pymysql(module)
    params = module.params
    database = params["database"]
    result = {
        "changed": False,
        "schema_version_before": None,
        "schema_version_after": None,
        "plan": [],
        "applied": [],
        "history_table": f"{database}.{params['history_table']}",
    }
    if params["target_version"] < 0:
        module.fail_json(msg=f"target_version must be 0 or more, got {params['target_version']}", **result)

    try:
        if params["migrations"] is not None:
            source = load_mapping(params["migrations"])
        elif params["migrations_dir"] is not None:
            source = load_directory(params["migrations_dir"])
        else:
            source = None
        migrator = Migrator(
            connect=lambda: connect_from_params(params, database=database),
            database=database,
            history_table=params["history_table"],
            lock_timeout=params["lock_timeout"],
        )
        run = migrator.run(
            source,
            params["target_version"],
            retry_failed=params["retry_failed"],
            check_mode=module.check_mode,
        )
    except (MigrationRefused, ConnectionFailed) as exc:
        module.fail_json(msg=str(exc), **result)
    except MigrationFailed as exc:
        run = exc.run
        result.update(
            changed=True,
            schema_version_before=run.schema_version_before,
            schema_version_after=run.schema_version_after,
            plan=[step.to_dict() for step in run.plan],
            applied=run.applied,
            failure=exc.failure,
        )
        module.fail_json(msg=str(exc), **result)
    except pymysql.MySQLError as exc:
        module.fail_json(msg=f"MariaDB error while reading or writing the history table: {exc}", **result)

    result.update(
        changed=run.changed,
        schema_version_before=run.schema_version_before,
        schema_version_after=run.schema_version_after,
        plan=[step.to_dict() for step in run.plan],
        applied=run.applied,
    )
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
"""Ansible module: remove a SimpleDB backup's artifacts from a directory or S3."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: simpledb_backup_remove
short_description: Remove a backup written by simpledb_backup (data file and manifest)
description:
  - Removes the manifest of the backup named O(name) first, so that the backup stops being
    complete before its data goes, then its data file (C(.sql.gz) or C(.sql)).
  - With O(discard_incomplete), also what interrupted writes left in the same directory or
    prefix, that is temporary C(.partial-*) files or unfinished S3 multipart uploads (whose
    parts S3 keeps, and bills, until they are aborted). A process killed in the middle of a
    backup cannot clean up after itself; this is how the next attempt does.
  - In a directory, the directory itself is removed when that leaves it empty.
  - Removing a backup that is not there is not an error (C(changed=false)).
version_added: "0.1.0"
author: SimpleDB operator authors
extends_documentation_fragment:
  - simpledb_s3
options:
  name:
    description: The backup's name, as given to M(simpledb_backup).
    type: str
    required: true
  path:
    description:
      - Directory holding the backup. One of O(path) and O(s3) is required.
    type: path
  discard_incomplete:
    description:
      - Also remove what unfinished writes left in the directory or under the S3 prefix, whatever
        backup they belong to. Only where no backup is being written into the same place at the
        same time (the operator gives every backup a directory or prefix of its own).
    type: bool
    default: false
notes:
  - Check mode reports what would be removed.
"""

EXAMPLES = r"""
- name: Remove a backup from the backup volume
  simpledb_backup_remove:
    path: /backups/apps/shop/shop-nightly
    name: shop-nightly

- name: Remove a backup from S3, with what an interrupted attempt left
  simpledb_backup_remove:
    name: shop-nightly
    discard_incomplete: true
    s3:
      bucket: db-backups
      prefix: simpledb/apps/shop/shop-nightly
      endpoint: https://minio.storage.svc:9000
      access_key: "{{ s3_secret.data['access-key-id'] | b64decode }}"
      secret_key: "{{ s3_secret.data['secret-access-key'] | b64decode }}"
  no_log: true
"""

RETURN = r"""
removed:
  description: Locations of the objects removed (in check mode, that would be removed).
  returned: always
  type: list
  elements: str
  sample: [/backups/apps/shop/shop-nightly/shop-nightly.manifest.json]
discarded:
  description: Number of unfinished writes discarded (temporary files or multipart uploads).
  returned: always
  type: int
  sample: 0
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.simpledb.manifest import DATA_SUFFIXES, data_name, manifest_name
from ansible.module_utils.simpledb.storage import (
    PathStorage,
    StorageError,
    storage_argument_spec,
    storage_from_params,
)


def main():
    argument_spec = {
        "name": {"type": "str", "required": True},
        **storage_argument_spec(),
        "discard_incomplete": {"type": "bool", "default": False},
    }
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("path", "s3")],
        required_one_of=[("path", "s3")],
        supports_check_mode=True,
    )
    params = module.params
    name = params["name"]
    if not name or "/" in name or name.startswith("."):
        module.fail_json(msg=f"name {name!r} must be a plain file name (no '/', not starting with '.')")
    if params["path"] and not os.path.isdir(params["path"]):
        module.exit_json(changed=False, removed=[], discarded=0)
    try:
        storage = storage_from_params(params)
        # The manifest first: without it the backup is no longer complete, so nothing restores
        # from a backup whose data is half gone.
        names = [manifest_name(name)] + [data_name(name, compression) for compression in DATA_SUFFIXES]
        present = [n for n in names if storage.exists(n)]
        removed = [storage.location(n) for n in present]
        discarded = 0
        if not module.check_mode:
            for object_name in present:
                storage.delete(object_name)
            if params["discard_incomplete"]:
                discarded = storage.discard_incomplete()
            if isinstance(storage, PathStorage) and not os.listdir(storage.root):
                os.rmdir(storage.root)
    except (StorageError, OSError) as exc:
        module.fail_json(msg=f"Could not remove the backup {name!r}: {exc}")
    module.exit_json(changed=bool(removed or discarded), removed=removed, discarded=discarded)


if __name__ == "__main__":
    main()

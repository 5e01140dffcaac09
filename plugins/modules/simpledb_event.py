#!/usr/bin/python
"""Ansible module simpledb_event: record a Kubernetes Event, aggregating repeats."""

DOCUMENTATION = r"""
module: simpledb_event
short_description: Record a Kubernetes Event about an object, counting repeats like kubectl shows them
description:
  - Creates a core/v1 Event about an object (the I(involved object)), as C(kubectl describe)
    and C(kubectl events) show them.
  - Repeats are aggregated as Kubernetes' own event recorder does - the same involved object,
    type, reason, message and reporting component within O(aggregate_window) seconds increase
    the existing Event's C(count) and move its C(lastTimestamp) instead of creating another
    Event. The Event's name is derived from those fields, so a repeat finds it by name. After
    the window, the same Event starts a new series (count 1).
  - The involved object's C(uid) is looked up when not given, so the Event is linked to this
    incarnation of the object.
version_added: "0.1.0"
author: SimpleDB operator authors
extends_documentation_fragment:
  - simpledb_k8s_auth
options:
  involved_object:
    description: The object the Event is about.
    type: dict
    required: true
    suboptions:
      api_version:
        description: Its API version, such as C(example.com/v1alpha1).
        type: str
        required: true
      kind:
        description: Its kind, such as C(SimpleDB).
        type: str
        required: true
      name:
        description: Its name.
        type: str
        required: true
      namespace:
        description: Its namespace; defaults to O(namespace). Ignored for cluster-scoped kinds.
        type: str
      uid:
        description: Its UID; looked up when not given (the object must then exist).
        type: str
      field_path:
        description: The part of the object the Event is about, such as C(spec.containers{mariadb}).
        type: str
  namespace:
    description:
      - Namespace of the Event. Defaults to the involved object's namespace (C(default) for a
        cluster-scoped object), which is where C(kubectl describe) looks for it.
    type: str
  type:
    description: C(Warning) for something that needs attention, otherwise C(Normal).
    type: str
    choices: [Normal, Warning]
    default: Normal
  reason:
    description:
      - One CamelCase word for programs, such as C(Created) or C(MigrationFailed) (at most 128
        characters).
    type: str
    required: true
  message:
    description: Sentence for humans; longer than 1024 characters is cut.
    type: str
    required: true
  reporting_component:
    description: Name of the controller that reports the Event; also used as C(source.component).
    type: str
    default: simpledb-operator
  reporting_instance:
    description:
      - Which instance of the controller reports it; defaults to this host's name (the operator's
        pod).
    type: str
  source_host:
    description: Value for C(source.host), such as the node name; omitted by default.
    type: str
  aggregate_window:
    description:
      - Seconds within which a repeat is counted into the existing Event. C(0) starts a new series
        every time.
    type: int
    default: 600
notes:
  - Supports check mode, which reports what would be written.
  - Events expire (the API server's C(--event-ttl), one hour by default).
seealso:
  - module: simpledb_status
"""

EXAMPLES = r"""
- name: Tell the user a migration failed
  simpledb_event:
    involved_object:
      api_version: example.com/v1alpha1
      kind: SimpleDB
      name: "{{ ansible_operator_meta.name }}"
      namespace: "{{ ansible_operator_meta.namespace }}"
      uid: "{{ _example_com_simpledb.metadata.uid }}"
    type: Warning
    reason: MigrationFailed
    message: "{{ migrated.msg }}"

- name: A Normal event; the uid is looked up
  simpledb_event:
    namespace: default
    involved_object:
      api_version: example.com/v1alpha1
      kind: SimpleDB
      name: simpledb
    reason: Ready
    message: MariaDB 11.4.5 ready, schema version 3
"""

RETURN = r"""
outcome:
  description:
    - C(created) (a new Event), C(aggregated) (a repeat counted into the existing Event) or
      C(restarted) (a repeat after the window; the Event starts a new series).
  returned: always
  type: str
  sample: aggregated
event:
  description: The Event as written (in check mode, as it would be written).
  returned: always
  type: dict
  sample:
    metadata: {name: simpledb.3f1c2a9e8b7d6c5a, namespace: default}
    involvedObject: {apiVersion: example.com/v1alpha1, kind: SimpleDB, name: simpledb, namespace: default,
                     uid: 0b0e6c1e-3f7a-4a39-9a51-6f3c1c2d4e5f}
    type: Warning
    reason: MigrationFailed
    message: "V3__add_index.sql (version 3) failed: ..."
    count: 2
    firstTimestamp: "2026-11-26T16:35:15Z"
    lastTimestamp: "2026-11-26T16:36:02Z"
"""

import socket

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.simpledb.events import DEFAULT_WINDOW, complete_involved_object, record_event
from ansible.module_utils.simpledb.k8s import (
    KubeAPI,
    KubernetesError,
    api_transport_from_params,
    auth_argument_spec,
)


def argument_spec():
    spec = auth_argument_spec()
    spec.update(
        involved_object={
            "type": "dict",
            "required": True,
            "options": {
                "api_version": {"type": "str", "required": True},
                "kind": {"type": "str", "required": True},
                "name": {"type": "str", "required": True},
                "namespace": {"type": "str"},
                "uid": {"type": "str"},
                "field_path": {"type": "str"},
            },
        },
        namespace={"type": "str"},
        type={"type": "str", "choices": ["Normal", "Warning"], "default": "Normal"},
        reason={"type": "str", "required": True},
        message={"type": "str", "required": True},
        reporting_component={"type": "str", "default": "simpledb-operator"},
        reporting_instance={"type": "str"},
        source_host={"type": "str"},
        aggregate_window={"type": "int", "default": DEFAULT_WINDOW},
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    given = params["involved_object"]
    involved = {
        "apiVersion": given["api_version"],
        "kind": given["kind"],
        "name": given["name"],
        "namespace": given["namespace"] or params["namespace"],
        "uid": given["uid"],
        "fieldPath": given["field_path"],
    }
    try:
        api = KubeAPI(api_transport_from_params(params))
        record = record_event(
            api,
            complete_involved_object(api, involved),
            reason=params["reason"],
            message=params["message"],
            event_type=params["type"],
            component=params["reporting_component"],
            instance=params["reporting_instance"] or socket.gethostname(),
            source_host=params["source_host"],
            namespace=params["namespace"],
            window=params["aggregate_window"],
            check_mode=module.check_mode,
        )
    except KubernetesError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=True, outcome=record.outcome, event=record.event)


if __name__ == "__main__":
    main()

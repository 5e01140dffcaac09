#!/usr/bin/python
"""Ansible module simpledb_status: set fields and conditions in a custom resource's status."""

DOCUMENTATION = r"""
module: simpledb_status
short_description: Set fields and conditions in the status of a Kubernetes custom resource
description:
  - Patches the C(status) subresource of an object, such as a SimpleDB, with the Python
    C(kubernetes) client. It does what C(operator_sdk.util.k8s_status) does, without that
    collection.
  - O(status) fields are merged into the existing status like a JSON merge patch; fields it does
    not name are kept.
  - O(conditions) are merged by C(type) into C(status.conditions); conditions of other types are
    kept, including the operator's own C(Running), C(Successful) and C(Failure). A condition's
    C(lastTransitionTime) changes only when its C(status) changes.
  - The update is conditional on the object's C(resourceVersion) and is recomputed when another
    writer got there first, so concurrent writers do not lose each other's fields.
  - C(changed) is false when the status already was as requested. The conditional patch is sent
    anyway (the server leaves the object untouched), because a read through the operator's
    caching proxy may be out of date.
version_added: "0.1.0"
author: SimpleDB operator authors
extends_documentation_fragment:
  - simpledb_k8s_auth
options:
  api_version:
    description: API version of the object.
    type: str
    required: true
    aliases: [api, version]
  kind:
    description: Kind of the object (case-sensitive).
    type: str
    required: true
  name:
    description: Name of the object.
    type: str
    required: true
  namespace:
    description: Namespace of the object; required for namespaced kinds.
    type: str
  status:
    description:
      - Fields to set in C(status). Nested dictionaries merge; a null value removes the field.
      - Use O(conditions) and O(observed_generation) for those two fields.
    type: dict
    default: {}
  conditions:
    description:
      - Conditions to set, merged by C(type) with the existing ones.
    type: list
    elements: dict
    default: []
    suboptions:
      type:
        description: Condition type, a CamelCase name such as C(Ready).
        type: str
        required: true
      status:
        description: C(True), C(False) or C(Unknown); YAML booleans are accepted.
        type: raw
        required: true
      reason:
        description: One CamelCase word for programs, such as C(ServerReady).
        type: str
        required: true
      message:
        description: Sentence for humans; longer than 32768 characters is cut.
        type: str
        default: ""
  unreported_fields:
    description:
      - Fields of C(status) whose change alone does not make the task C(changed), for bookkeeping
        that records what a run saw rather than a change it made (such as C(convergedDigest)).
    type: list
    elements: str
    default: []
  observed_generation:
    description:
      - Value for C(status.observedGeneration), normally the C(metadata.generation) the run
        acted on.
    type: int
notes:
  - Supports check mode and diff mode.
seealso:
  - module: simpledb_event
"""

EXAMPLES = r"""
- name: Report a ready database
  simpledb_status:
    api_version: example.com/v1alpha1
    kind: SimpleDB
    name: "{{ ansible_operator_meta.name }}"
    namespace: "{{ ansible_operator_meta.namespace }}"
    observed_generation: "{{ _example_com_simpledb.metadata.generation }}"
    status:
      phase: Ready
      engineVersion: "{{ probe.server.version }}"
      schemaVersion: "{{ probe.server.schema_version }}"
    conditions:
      - type: Ready
        status: "True"
        reason: ServerReady
        message: MariaDB answers at simpledb.default.svc.cluster.local:3306
      - type: Degraded
        status: "False"
        reason: AsExpected

- name: Remove a field
  simpledb_status:
    api_version: example.com/v1alpha1
    kind: SimpleDB
    name: simpledb
    namespace: default
    status:
      lastBackup: null
"""

RETURN = r"""
status:
  description: The object's status after the update (in check mode, what it would be).
  returned: always
  type: dict
  sample:
    phase: Ready
    observedGeneration: 2
    conditions:
      - type: Ready
        status: "True"
        reason: ServerReady
        message: MariaDB answers
        lastTransitionTime: "2026-11-26T16:35:15Z"
diff:
  description: The status before and after, in diff mode.
  returned: when diff mode is on
  type: dict
  sample: {before: {status: {phase: Creating}}, after: {status: {phase: Ready}}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.simpledb.conditions import InvalidCondition
from ansible.module_utils.simpledb.cr_status import update_status
from ansible.module_utils.simpledb.k8s import (
    KubeAPI,
    KubernetesError,
    api_transport_from_params,
    auth_argument_spec,
)


def argument_spec():
    spec = auth_argument_spec()
    spec.update(
        api_version={"type": "str", "required": True, "aliases": ["api", "version"]},
        kind={"type": "str", "required": True},
        name={"type": "str", "required": True},
        namespace={"type": "str"},
        status={"type": "dict", "default": {}},
        conditions={
            "type": "list",
            "elements": "dict",
            "default": [],
            "options": {
                "type": {"type": "str", "required": True},
                "status": {"type": "raw", "required": True},
                "reason": {"type": "str", "required": True},
                "message": {"type": "str", "default": ""},
            },
        },
        observed_generation={"type": "int"},
        unreported_fields={"type": "list", "elements": "str", "default": []},
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    for field, option in (("conditions", "conditions"), ("observedGeneration", "observed_generation")):
        if field in params["status"]:
            module.fail_json(msg=f"Set status.{field} with the {option} option, not inside status")

    try:
        api = KubeAPI(api_transport_from_params(params))
        update = update_status(
            api,
            params["api_version"],
            params["kind"],
            params["name"],
            params["namespace"],
            fields=params["status"],
            conditions=params["conditions"],
            observed_generation=params["observed_generation"],
            check_mode=module.check_mode,
            unreported=tuple(params["unreported_fields"]),
        )
    except (KubernetesError, InvalidCondition) as exc:
        module.fail_json(msg=str(exc))

    result = {"changed": update.changed, "status": update.after}
    if module._diff:
        result["diff"] = {"before": {"status": update.before}, "after": {"status": update.after}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright: the SimpleDB operator authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: requeue_after
short_description: Ask the operator to reconcile this custom resource again after a period
description:
  - Returns O(time) as C(period). ansible-operator watches the job events of a run; when a task
    whose action is C(requeue_after) (or C(operator_sdk.util.requeue_after)) succeeds, it stops
    reading the run's events and re-queues the custom resource after C(period).
  - Make it the last task of the run. The operator does not mark the status done, and does not
    remove its finalizer, in a run that ends with it.
  - Same interface as C(operator_sdk.util.requeue_after), so a role can use either. This project
    ships it because the C(operator_sdk.util) collection is not installed here.
options:
  time:
    description:
      - The period, as a Go duration (C(30s), C(5m), C(1h30m), C(500ms)).
    type: str
    required: true
notes:
  - Changes nothing; check mode returns the same result.
author:
  - SimpleDB operator authors
"""

EXAMPLES = r"""
- name: Check again in 30 seconds while the StatefulSet rolls out
  requeue_after:
    time: 30s
  when: not statefulset_ready
"""

RETURN = r"""
period:
  description: The requested period, as given in O(time).
  returned: success
  type: str
  sample: 30s
"""

import re

from ansible.module_utils.basic import AnsibleModule

# Go's time.ParseDuration grammar (the operator parses `period` with it).
GO_DURATION = re.compile(r"^[-+]?(0|([0-9]*(\.[0-9]*)?(ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)$")


def main():
    module = AnsibleModule(
        argument_spec={"time": {"type": "str", "required": True}},
        supports_check_mode=True,
    )
    period = module.params["time"]
    if not GO_DURATION.match(period) or not re.search(r"[0-9]", period):
        module.fail_json(msg=f"time {period!r} is not a duration such as 30s, 5m or 1h30m")
    module.exit_json(changed=False, period=period)


if __name__ == "__main__":
    main()

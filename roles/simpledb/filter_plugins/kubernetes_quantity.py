"""The simpledb_quantity filter: a Kubernetes quantity ("1Gi", "500M", "1.5Gi") in bytes.

The role compares volume sizes with it; Ansible's human_to_bytes does not read "Gi".
"""

from __future__ import annotations

import re
from decimal import Decimal

from ansible.errors import AnsibleFilterError

_SUFFIXES = {
    "": 1,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "m": Decimal("0.001"),
}
_QUANTITY = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))([KMGTPE]i|[kMGTPEm]|[eE][+-]?\d+)?\s*$")


def simpledb_quantity(value: object) -> int:
    """Bytes in a Kubernetes quantity, rounded up."""
    match = _QUANTITY.match(str(value))
    if not match:
        raise AnsibleFilterError(f"simpledb_quantity: {value!r} is not a Kubernetes quantity such as 1Gi")
    number, suffix = Decimal(match.group(1)), match.group(2) or ""
    factor = Decimal(10) ** int(suffix[1:]) if suffix[:1] in ("e", "E") else Decimal(_SUFFIXES[suffix])
    return int((number * factor).to_integral_value(rounding="ROUND_CEILING"))


class FilterModule:
    def filters(self) -> dict:
        return {"simpledb_quantity": simpledb_quantity}

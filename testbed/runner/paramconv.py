"""camelCase to snake_case for spec keys, ported from ansible-operator's `internal/ansible/paramconv`.

The port keeps the Go code's rules exactly, quirks included, because roles depend on the
resulting variable names: `egressIPs` -> `egress_ips`, `ThisShouldHaveUnderscores` ->
`_this_should_have_underscores`, `URLegressIP` -> `url_egress_ip` (no leading `_` when the first
word is one of the special words), `sizeK8sBuckets` -> `size_k8s_buckets`.
"""

from __future__ import annotations

import re
from typing import Any

# Go: numberSequence = `([a-zA-Z])(\d+)([a-zA-Z](\d+))` replaced by `$1 $2 $3` (ASCII digits only).
_NUMBER_SEQUENCE = re.compile(r"([a-zA-Z])([0-9]+)([a-zA-Z]([0-9]+))")

# Go ranges over a map here; the insertions it makes cannot create or split another special word,
# so the order does not change the result.
_SPECIAL_WORDS = ("HTTP", "URL", "IP")
_SPECIAL_WORDS_LOWER = {w.lower() for w in _SPECIAL_WORDS}


def _is_upper(c: str) -> bool:
    return "A" <= c <= "Z"


def _is_lower(c: str) -> bool:
    return "a" <= c <= "z"


def _preprocess_word_mapping(value: str) -> str:
    """Isolate the first occurrence of each special word (and its plural) with underscores."""
    for word in _SPECIAL_WORDS:
        idx = value.find(word)
        if idx < 0:
            continue
        end = idx + len(word)
        if end - 1 == len(value) - 1:
            value = value[:idx] + "_" + value[idx:]
        elif value[end] == "s":
            if end == len(value) - 1:
                value = value[:idx] + "_" + value[idx:end] + "S"
            elif idx == 0:
                value = value[:end] + "S" + "_" + value[end + 1 :]
            else:
                value = value[:idx] + "_" + value[idx:end] + "S" + "_" + value[end + 1 :]
        elif idx == 0:
            value = value[:end] + "_" + value[end:]
        else:
            value = value[:idx] + "_" + value[idx:end] + "_" + value[end:]
    return value


def to_snake(s: str) -> str:
    """Go `paramconv.ToSnake`."""
    s = _NUMBER_SEQUENCE.sub(r"\1 \2 \3", s).strip(" ")
    if not s:
        # Go indexes the first rune and panics; the reconcile then fails. Say why instead.
        raise ValueError("cannot convert an empty or blank spec key to snake_case")
    prefix = "_" if _is_upper(s[0]) else ""
    s = _preprocess_word_mapping(s)

    bits: list[str] = []
    current = ""
    i_real = -1
    for i, c in enumerate(s):
        i_real += 1
        next_case_changes = False
        if i + 1 < len(s):
            nxt = s[i + 1]
            next_case_changes = (_is_upper(c) and _is_lower(nxt)) or (_is_lower(c) and _is_upper(nxt))
        if i_real > 0 and current[-1] != "_" and next_case_changes:
            if _is_upper(c):
                bits.append(current.lower())
                current = c
                i_real = 0
            else:
                bits.append((current + c).lower())
                current = ""
                i_real = -1
        elif c in " _-":
            bits.append(current.lower())
            current = ""
            i_real = -1
        else:
            current += c
    bits.append(current.lower())
    joined = "_".join(bits)
    if bits[0] in _SPECIAL_WORDS_LOWER:
        return joined
    return prefix + joined


def _convert(value: Any) -> Any:
    if isinstance(value, dict):
        return {to_snake(k): _convert(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_convert(v) for v in value]
    return value


def map_to_snake(spec: dict[str, Any]) -> dict[str, Any]:
    """Go `paramconv.MapToSnake`: every key, recursively through dicts and lists of dicts."""
    return {to_snake(k): _convert(v) for k, v in spec.items()}

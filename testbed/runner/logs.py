"""Log lines: `time level logger message key=value ...`, one line per record, on stdout.

The real operator logs JSON through zap; the local runner keeps the same logger names,
messages and keys in a form that reads well in a terminal and still greps by key.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any


def _value(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value) if (not value or any(c in value for c in ' "=\n\t')) else value
    return json.dumps(value, default=str, sort_keys=True)


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = dt.datetime.fromtimestamp(record.created, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        parts = [when, f"{record.levelname:<5}", record.name, _value(record.getMessage())]
        fields = getattr(record, "fields", None) or {}
        parts += [f"{k}={_value(v)}" for k, v in fields.items()]
        if record.exc_info:
            parts.append("error=" + _value(str(record.exc_info[1])))
        return " ".join(parts)


def setup(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The Kubernetes client logs every watch reconnect at INFO/WARNING; the runner reports its own.
    logging.getLogger("kubernetes").setLevel(logging.ERROR)
    logging.getLogger("urllib3").setLevel(logging.ERROR)


def kv(**fields: Any) -> dict[str, dict[str, Any]]:
    """`extra=` for a log call: log.info("msg", extra=kv(name=..., namespace=...))."""
    return {"fields": fields}

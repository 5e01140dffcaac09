"""With the allocator set up for large buffers, a freed multi-megabyte buffer is reused
instead of being mapped and page-faulted in again."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

# Escaping a 4 MiB chunk, as sqltext.format_chunk does: each replace makes a new buffer
# and frees the one before.
PROGRAM = """
import os, resource, sys
import ansible.module_utils as m
m.__path__.append(sys.argv[2])
from ansible.module_utils.simpledb.allocator import keep_buffers_for_reuse
tuned = sys.argv[1] == "tuned" and keep_buffers_for_reuse()
raw = os.urandom(4 * 1024 * 1024)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for chunk in range(50):
    escaped = raw
    for byte in (b"\\\\", b"'", b"\\0", b"\\n"):
        escaped = escaped.replace(byte, b"\\\\" + byte)
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
BUFFERS = 50 * 4
PAGES_PER_BUFFER = 4 * 1024 * 1024 // 4096


def page_faults(mode: str) -> tuple[bool, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode, str(ROOT / "plugins" / "module_utils")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return out[0] == "True", int(out[1])


def test_freed_large_buffers_are_reused():
    tuned, faults = page_faults("tuned")
    assert tuned is True  # glibc, as in the operator image
    _, default_faults = page_faults("default")
    # By default nearly every buffer is mapped afresh, each page faulted in and zeroed.
    assert default_faults > BUFFERS * PAGES_PER_BUFFER // 2
    # Tuned, the first buffers' pages are faulted in once and then reused.
    assert faults < 10 * PAGES_PER_BUFFER

"""What the benchmark sections share: reports, timed subprocesses with their peak RSS, charts."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from html import escape


@dataclass
class Report:
    """A section's result: text for the terminal, markdown for docs/benchmarks.md, extra files."""

    text: str
    markdown: str
    files: dict[str, str] = field(default_factory=dict)


@dataclass
class Run:
    seconds: float
    max_rss_mb: float
    output: bytes


def measure(command: list[str] | str, stdout: str | None = None, stdin: str | None = None, shell: bool = False) -> Run:
    """Run a command to completion: wall time, and peak RSS from wait4() (for a shell
    pipeline, the largest of its processes). Output goes to ``stdout`` or is returned."""
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(stdout, "wb") if stdout else tempfile.TemporaryFile())
        err = stack.enter_context(tempfile.TemporaryFile())
        inp = stack.enter_context(open(stdin, "rb")) if stdin else subprocess.DEVNULL
        started = time.monotonic()
        proc = subprocess.Popen(command, stdin=inp, stdout=out, stderr=err, shell=shell)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            out.seek(0) if not stdout else None
            detail = err.read().decode(errors="replace") + ("" if stdout else out.read().decode(errors="replace"))
            raise RuntimeError(f"{command!r} failed ({proc.returncode}): {detail[-3000:]}")
        output = b""
        if not stdout:
            out.seek(0)
            output = out.read()
    return Run(seconds, usage.ru_maxrss / 1024, output)


def machine() -> str:
    cpus = os.cpu_count()
    with open("/proc/meminfo") as meminfo:
        mem_gb = int(meminfo.readline().split()[1]) / 1024 / 1024
    load = os.getloadavg()[0]
    return f"{platform.machine()}, {cpus} CPUs, {mem_gb:.0f} GiB RAM, load average {load:.1f} at the start"


def table(headers: list[str], rows: list[list[str]]) -> tuple[str, str]:
    """The same table as aligned text and as markdown."""
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    text = "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])
    markdown = "\n".join(
        ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    )
    return text, markdown


def bar_chart_svg(title: str, groups: list[tuple[str, list[tuple[str, float]]]], unit: str) -> str:
    """A horizontal grouped bar chart as standalone SVG (no plotting library needed)."""
    colours = ["#7f7f7f", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd"]
    labels = []
    for _, bars in groups:
        for label, _ in bars:
            if label not in labels:
                labels.append(label)
    biggest = max(v for _, bars in groups for _, v in bars) or 1.0
    left, width, bar_h, gap = 190, 420, 16, 14
    y = 50
    parts = [f'<text x="10" y="24" font-size="16" font-weight="bold">{escape(title)}</text>']
    for group, bars in groups:
        parts.append(f'<text x="10" y="{y + bar_h}" font-size="13">{escape(group)}</text>')
        for label, value in bars:
            colour = colours[labels.index(label) % len(colours)]
            length = max(1.0, width * value / biggest)
            parts.append(f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar_h}" fill="{colour}"/>')
            parts.append(
                f'<text x="{left + length + 5:.1f}" y="{y + bar_h - 3}" font-size="11">{value:.1f} {unit}</text>'
            )
            y += bar_h + 2
        y += gap
    legend_y = y + 5
    for index, label in enumerate(labels):
        x = 10 + index * 200
        parts.append(f'<rect x="{x}" y="{legend_y}" width="12" height="12" fill="{colours[index % len(colours)]}"/>')
        parts.append(f'<text x="{x + 17}" y="{legend_y + 11}" font-size="12">{escape(label)}</text>')
    height = legend_y + 30
    body = "\n  ".join(parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 120}" height="{height}" '
        f'font-family="sans-serif">\n  <rect width="100%" height="100%" fill="white"/>\n  {body}\n</svg>\n'
    )

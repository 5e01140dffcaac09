"""Run benchmark sections: ``python -m bench [SECTION ...] [options]`` (``make bench``).

With no section named, every section runs. Each rewrites only its own block of
docs/benchmarks.md (between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

# The sections, in the order they appear in docs/benchmarks.md. A new section is a module
# in this package with NAME, add_arguments() and run(); list it here.
SECTIONS = ["backup", "s3", "reconcile"]
ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
DOC_HEADER = """# Benchmarks

Measured by `make bench` (`python -m bench`), on the machine named in each section. Every
ratio compares two tools run one after the other in the same run on the same server and
data, so a busy shared machine moves both sides alike. Sections are rewritten independently
by `python -m bench SECTION`.
"""


def update_doc(name: str, markdown: str) -> None:
    text = DOC.read_text() if DOC.exists() else DOC_HEADER
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "sections", nargs="*", metavar="SECTION", help=f"one of {', '.join(SECTIONS)} (default all)"
    )
    parser.add_argument("--no-doc", action="store_true", help="print only; leave docs/benchmarks.md alone")
    modules = {name: importlib.import_module(f"bench.{name}") for name in SECTIONS}
    for module in modules.values():
        module.add_arguments(parser.add_argument_group(module.NAME))
    args = parser.parse_args(argv)
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; known: {', '.join(SECTIONS)}")
    for name in args.sections or SECTIONS:
        report = modules[name].run(args)
        print(report.text)
        if not args.no_doc:
            update_doc(name, report.markdown)
            for path, content in report.files.items():
                (ROOT / path).write_text(content)
            print(f"\nwrote {DOC.relative_to(ROOT)}" + "".join(f", {p}" for p in report.files))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

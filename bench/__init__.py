"""Benchmarks of the SimpleDB operator (design section 9); `python -m bench` runs them.

Each section is a module with ``NAME``, ``add_arguments(parser)`` and ``run(args) -> Report``;
bench/__main__.py runs the sections asked for, prints their tables and rewrites their part of
docs/benchmarks.md, leaving the other sections' parts as they were.
"""

"""Benchmarks: `python -m bench.run [all|NAME ...]` measures and rewrites docs/benchmarks.md.

One module per measurement; each exposes `NAME`, `TITLE`, `DEFAULT_SIZE`, `SMOKE_SIZE` and
`run(size) -> Section`. Figures live in the docs, never in test assertions.
"""

"""AP2T daily batch export for N meters (synthetic records): time and peak memory.

Each measurement runs in a fresh subprocess (`python -m bench.ap2t_export --child N`) so
that peak RSS (`resource.getrusage(RUSAGE_SELF).ru_maxrss`) belongs to the export alone."""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import date
from pathlib import Path

from bench.report import REPO, Row, Section

NAME = "ap2t_export"
TITLE = "AP2T export (synthetic daily records)"
DEFAULT_SIZE = 1_000_000  # meters
SMOKE_SIZE = 200
TIME_TARGET = 60.0
MEMORY_TARGET_MB = 300.0
TRACEMALLOC_SIZE = 100_000  # tracemalloc slows allocation-heavy code several times
DAY = date(2024, 5, 1)

METHOD = """\
`p2apst_adapter.ap2t.export_batch` streams `tests.ap2t_support.synthetic_records` (one
`DailyRecord` per meter, generated lazily in meter-number order) to the CSV and its
manifest, with the final fsync. Time is wall time of `export_batch` (including generating
the records, which a real export would read from the database instead). Peak RSS is the
child process's `ru_maxrss` (interpreter and imports included; the baseline before the
export is shown beside it). tracemalloc's peak of Python allocations during the export is
measured in a separate child at a smaller size, showing that memory does not grow with N."""


def _child(count: int, trace: bool) -> dict[str, float]:
    from p2apst_adapter.ap2t import export_batch
    from tests.ap2t_support import synthetic_records

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if trace:
        tracemalloc.start()
    with tempfile.TemporaryDirectory(prefix="bench-ap2t-") as out:
        started = time.perf_counter()
        manifest = asyncio.run(export_batch(DAY, synthetic_records(DAY, count), Path(out)))
        seconds = time.perf_counter() - started
        size = (Path(out) / manifest.file).stat().st_size
    peak_traced = tracemalloc.get_traced_memory()[1] / 2**20 if trace else 0.0
    return {
        "count": manifest.record_count,
        "seconds": seconds,
        "baseline_rss_mb": baseline,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "traced_peak_mb": peak_traced,
        "csv_mb": size / 2**20,
    }


def _spawn(count: int, trace: bool) -> dict[str, float]:
    command = [sys.executable, "-m", "bench.ap2t_export", "--child", str(count)]
    if trace:
        command.append("--tracemalloc")
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"export child failed:\n{done.stderr}")
    figures: dict[str, float] = json.loads(done.stdout)
    return figures


def run(size: int = DEFAULT_SIZE) -> Section:
    started = time.perf_counter()
    section = Section(NAME, TITLE, size, method=METHOD)
    plain = _spawn(size, trace=False)
    traced_size = min(size, TRACEMALLOC_SIZE)
    traced = _spawn(traced_size, trace=True)
    section.rows += [
        Row(
            f"{size:,} meters: time",
            plain["seconds"],
            "s",
            f"< {TIME_TARGET:.0f} s",
            plain["seconds"] < TIME_TARGET,
            f"{size / plain['seconds']:,.0f} records/s; CSV {plain['csv_mb']:.0f} MiB",
        ),
        Row(
            f"{size:,} meters: peak RSS",
            plain["peak_rss_mb"],
            "MiB",
            f"< {MEMORY_TARGET_MB:.0f} MB",
            plain["peak_rss_mb"] < MEMORY_TARGET_MB,
            f"baseline after imports {plain['baseline_rss_mb']:.0f} MiB",
        ),
        Row(
            f"{traced_size:,} meters: tracemalloc peak during export",
            traced["traced_peak_mb"],
            "MiB",
        ),
    ]
    section.seconds = time.perf_counter() - started
    return section


def main(argv: list[str]) -> None:
    count = int(argv[argv.index("--child") + 1])
    sys.stdout.write(json.dumps(_child(count, "--tracemalloc" in argv)) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])

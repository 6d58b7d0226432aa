"""Runs one fuzz target under atheris for a fixed number of executions:

    python -m tests.fuzz.run TARGET RUNS WORK_DIR

Seeds come from tests/fuzz/corpus/TARGET/ (read only); new inputs go to WORK_DIR/corpus
and a crashing input to WORK_DIR/crash-*. A count of executions, not seconds, bounds the
run, so a slow machine runs the same search, only later."""

from __future__ import annotations

import sys
from pathlib import Path

import atheris  # type: ignore[import-untyped]

CORPUS = Path(__file__).parent / "corpus"

# What each target's coverage is measured on: its decoder's own packages (and the ISO 8583
# library the dialect wraps). Instrumenting everything imported costs seconds a run.
INSTRUMENT = {
    "sms_pdu": ["gateway.pdu"],
    "firmware_frame": ["firmware_protocol.frames"],
    "iso8583": ["p2apst_adapter.dialect", "iso8583"],
    "smpp": ["gateway.smpp.pdu"],
    "customer_command": ["operator_data.commands"],
}


def main(argv: list[str]) -> None:
    if len(argv) != 4:
        sys.exit("usage: python -m tests.fuzz.run TARGET RUNS WORK_DIR")
    name, runs, work = argv[1], int(argv[2]), Path(argv[3])
    if name not in INSTRUMENT:
        sys.exit(f"unknown target {name!r}; one of {', '.join(INSTRUMENT)}")
    with atheris.instrument_imports(include=INSTRUMENT[name]):
        from tests.fuzz.targets import TARGETS
    scratch = work / "corpus"
    scratch.mkdir(parents=True, exist_ok=True)
    seeds = CORPUS / name
    # libFuzzer writes new inputs into the first corpus directory only: the scratch one.
    args = [argv[0], f"-runs={runs}", "-seed=1", "-max_len=600", f"-artifact_prefix={work}/"]
    args += [str(scratch)] + ([str(seeds)] if seeds.is_dir() else [])
    atheris.Setup(args, TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)

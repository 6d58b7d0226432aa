"""Hub workers on one machine open the same counter ledger at the same moment (a bench
case with two workers failed at start-up with "database is locked"): each open waits for
the other instead of failing."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from operator_data.registry.counter_ledger import CounterLedger, LedgerError

_FORK = multiprocessing.get_context("fork")  # the module is loaded already: a quick start


def _open(
    path: str, start: multiprocessing.synchronize.Barrier, errors: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    start.wait()
    try:
        CounterLedger(Path(path)).close()
    except LedgerError as error:
        errors.put(str(error))


def test_workers_opening_one_ledger_at_once_all_get_it(tmp_path: Path) -> None:
    failures: list[str] = []
    for round_ in range(12):
        path = tmp_path / f"ledger-{round_}.db"
        start = _FORK.Barrier(4)
        errors: multiprocessing.Queue = _FORK.Queue()  # type: ignore[type-arg]
        workers = [_FORK.Process(target=_open, args=(str(path), start, errors)) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert all(worker.exitcode == 0 for worker in workers)
        while not errors.empty():
            failures.append(errors.get())
    assert failures == []

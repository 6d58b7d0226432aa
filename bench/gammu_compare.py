"""Side by side with Gammu SMSD: the same emulated modems (over ptys), the same workload,
through gammu-smsd (a subprocess per modem, `files` backend) and through our ModemPool."""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import gammu_smsd
from bench.drive import Outcome, pool_inbound, pool_outbound, texts
from bench.report import Row, Section
from bench.rig import SINK, Modems, busy_fraction, emulated_modems, percentile
from gateway.spool import Spool

NAME = "gammu_compare"
TITLE = "Side by side with Gammu SMSD"
DEFAULT_SIZE = 100  # SMS per workload on the `fast` profile
SMOKE_SIZE = 3
FAST_TARGET = 20.0
PHYSICAL_TARGET = 0.95
REALISTIC_MODEMS = 4
REALISTIC_SCALE = 1 / 10
REALTIME_MESSAGES = 8  # one modem, real 5-10 s sends: about 60 s each side
POLL = 0.01  # how often the Gammu side is looked at (measurement resolution)

METHOD = """\
Both contenders drive emulated modems (`meter_sim.modem_emulator`) on pseudo-terminals;
the emulators, our pool and the observer run in the benchmark's event loop, gammu-smsd
1.42 (Debian) runs as one subprocess per modem (Gammu drives one phone per daemon), with
the `files` backend and a configuration tuned for throughput (LoopSleep 0, CommTimeout 0,
StatusFrequency 0, no security/battery/signal/network checks). Each side first sends one
warm-up SMS (start-up is not measured); then the whole workload is queued at once (outbox
files for Gammu, `pool.send` for us; with several modems Gammu's messages are split evenly
over the daemons beforehand, which favours Gammu). A message counts as sent when it reaches
the simulated SMSC (same observer for both); latency = queued → reached the SMSC. Inbound:
SMS are delivered to the modems' SIMs (30 slots, a full SIM is retried by the SMSC) until
stored: a file in Gammu's inbox vs our pool's `persist` callback.

Our side shares one core with the emulators (same process), Gammu does not — a handicap
for us on `fast`. On `realistic` the send time is compressed 1/10 (see pool_efficiency for
why compression is a lower bound for a driver with a fixed per-message cost; it penalises
Gammu's larger fixed cost too, so a real-time one-modem run is included)."""


NOTES = [
    "Where Gammu's time goes (strace of gammu-smsd 1.42 sending on `fast`, 2026-11-21): "
    "about 0.7 s per message that is almost all fixed waiting, not CPU — per message a "
    "400-500 ms `nanosleep` plus 100 ms and 10 ms ones in its send/status loop, and 50 ms "
    "`select` timeouts while it polls the port for the answer. Those waits are constant, so "
    "they cost ~50 % on a 0.5-1 s (compressed) send but only ~9 % on a real 5-10 s send.",
    "Inbound is not a target. Our driver reads each SMS with its own `AT+CMGR` on the "
    "`+CMTI` announcement and deletes it with `AT+CMGD` only after `persist` returned (no "
    "message is ever lost between SIM and store); our figure also includes multipart "
    "reassembly and event emission. Gammu's figure stops when its inbox file appears "
    "(polled every 10 ms, so its per-message figure is only accurate to that).",
    "Our outbound figures are for the pool as `pintar gateway` runs it: store-then-send "
    "(`AT+CMGW`, a spool commit, `AT+CMSS`, a spool commit, `AT+CMGD` per SMS), so that a "
    "crash or a hang mid-send never sends an SMS twice (Gammu, like our earlier `AT+CMGS` "
    "path, cannot tell and sends again). On `fast` that costs 5-6× the `AT+CMGS` rate "
    "(shown beside it: two more round trips and two fsyncs per SMS, all of it fixed cost); "
    "on a real 5-10 s send it is lost in the noise (the realistic shares below include it).",
]


async def _wait(
    done: Callable[[], bool], smsd: gammu_smsd.GammuSmsd, within: float, what: str
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not done():
        if not smsd.running:
            raise RuntimeError(f"gammu-smsd exited during {what}:\n{smsd.log_tail()}")
        if loop.time() > deadline:
            raise TimeoutError(f"gammu-smsd did not finish {what}:\n{smsd.log_tail()}")
        await asyncio.sleep(POLL)


async def gammu_outbound(modems: Modems, workload: list[str], workdir: Path) -> Outcome:
    sink = modems.sink
    async with _Daemons(modems, workdir, receive_frequency=3600) as daemons:
        for n, smsd in enumerate(daemons):
            smsd.queue(SINK, [f"warm-up {n}"])
        await _wait(lambda: len(sink.arrived) >= len(daemons), daemons[0], 120, "warm-up")
        base = len(sink.arrived)
        loop = asyncio.get_running_loop()
        started = loop.time()
        for n, smsd in enumerate(daemons):
            smsd.queue(SINK, workload[n :: len(daemons)])
        timeout = 60 + 10 * len(workload)
        await _wait(
            lambda: len(sink.arrived) >= base + len(workload), daemons[0], timeout, "sending"
        )
    arrived = [sink.arrived[text] for text in workload]
    return Outcome(started, max(arrived), [t - started for t in arrived])


async def gammu_inbound(modems: Modems, count: int, workdir: Path) -> Outcome:
    async with _Daemons(modems, workdir, receive_frequency=0) as daemons:
        # Ready when a first message has been stored; then the measured batch.
        modems.network.submit("+6281300000000", modems.emulators[0].msisdn, text="warm-up")
        await _wait(lambda: daemons[0].inbox() >= 1, daemons[0], 120, "warm-up")
        loop = asyncio.get_running_loop()
        started = loop.time()
        stored: list[float] = []
        seen = [d.inbox() for d in daemons]
        for n in range(count):
            modem = modems.emulators[n % len(modems.emulators)]
            # Distinct senders: Gammu's inbox file names must not collide.
            modems.network.submit(f"+62813{n:08d}", modem.msisdn, text=f"in {n:06d} SALDO")

        def progressed() -> bool:
            now = loop.time()
            for index, smsd in enumerate(daemons):
                current = smsd.inbox()
                stored.extend([now] * (current - seen[index]))
                seen[index] = current
            return len(stored) >= count

        await _wait(progressed, daemons[0], 60 + 10 * count, "receiving")
    return Outcome(started, max(stored), [t - started for t in stored])


class _Daemons:
    def __init__(self, modems: Modems, workdir: Path, *, receive_frequency: int) -> None:
        self._smsds = [
            gammu_smsd.GammuSmsd(
                e.device_path, workdir / f"smsd{n}", receive_frequency=receive_frequency
            )
            for n, e in enumerate(modems.emulators)
        ]

    async def __aenter__(self) -> list[gammu_smsd.GammuSmsd]:
        for smsd in self._smsds:
            await smsd.__aenter__()
        return self._smsds

    async def __aexit__(self, *exc: object) -> None:
        for smsd in self._smsds:
            await smsd.__aexit__(None, None, None)


def _median_ratio(slow: Outcome, fast: Outcome) -> float:
    return statistics.median(slow.latencies) / statistics.median(fast.latencies)


def _latency(outcome: Outcome) -> str:
    values = outcome.latencies
    return (
        f"latency p50 {percentile(values, 0.5) * 1000:.0f} ms, "
        f"p95 {percentile(values, 0.95) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms; "
        f"{outcome.seconds / len(values) * 1000:.1f} ms per message"
    )


async def _compare_fast(size: int, workdir: Path) -> list[Row]:
    rows: list[Row] = []
    workload = texts(size, "fast")
    async with emulated_modems(1, realistic=False, seed=1) as modems:
        direct = await pool_outbound(modems, workload)
    async with (
        emulated_modems(1, realistic=False, seed=1) as modems,
        Spool(workdir / "store-then-send-spool.db") as spool,
    ):
        ours = await pool_outbound(modems, workload, journal=spool)
    async with emulated_modems(1, realistic=False, seed=1) as modems:
        theirs = await gammu_outbound(modems, workload, workdir / "fast-out")
    ratio = theirs.seconds / ours.seconds
    rows += [
        Row(
            "fast, outbound, 1 modem: ModemPool, AT+CMGS (no journal)",
            size / direct.seconds,
            "SMS/s",
            "",
            None,
            _latency(direct),
        ),
        Row(
            "fast, outbound, 1 modem: ModemPool, store-then-send (as the gateway runs)",
            size / ours.seconds,
            "SMS/s",
            "",
            None,
            _latency(ours)
            + "; per SMS AT+CMGW, AT+CMSS, AT+CMGD and two synchronous=FULL spool commits",
        ),
        Row(
            "fast, outbound, 1 modem: gammu-smsd",
            size / theirs.seconds,
            "SMS/s",
            "",
            None,
            _latency(theirs),
        ),
        Row(
            "fast, outbound: ModemPool (store-then-send) ÷ gammu-smsd rate",
            ratio,
            "×",
            f"≥ {FAST_TARGET:.0f}×",
            ratio >= FAST_TARGET,
            f"median latency ratio {_median_ratio(theirs, ours):.1f}×",
        ),
    ]
    async with emulated_modems(1, realistic=False, seed=2) as modems:
        ours_in = await pool_inbound(modems, size)
    async with emulated_modems(1, realistic=False, seed=2) as modems:
        theirs_in = await gammu_inbound(modems, size, workdir / "fast-in")
    rows += [
        Row(
            "fast, inbound, 1 modem: ModemPool",
            size / ours_in.seconds,
            "SMS/s",
            "",
            None,
            _latency(ours_in),
        ),
        Row(
            "fast, inbound, 1 modem: gammu-smsd",
            size / theirs_in.seconds,
            "SMS/s",
            "",
            None,
            _latency(theirs_in),
        ),
        Row("fast, inbound: ModemPool ÷ gammu-smsd rate", theirs_in.seconds / ours_in.seconds, "×"),
    ]
    return rows


async def _physical(
    modems_count: int, per_modem: int, scale: float, seed: int, gammu_dir: Path | None
) -> tuple[tuple[float, Outcome], tuple[float, Outcome] | None]:
    """(steady-state share of the physical rate, outcome) for us and, if asked, Gammu."""
    workload = texts(modems_count * per_modem, f"real{seed}")

    async def ours() -> tuple[float, Outcome]:
        journal = Path(tempfile.mkdtemp(prefix="bench-spool-")) / "spool.db"
        async with (
            emulated_modems(modems_count, realistic=True, scale=scale, seed=seed) as m,
            Spool(journal) as spool,
        ):
            outcome = await pool_outbound(m, workload, journal=spool)
        shutil.rmtree(journal.parent)
        return _share(m, outcome), outcome

    async def theirs(path: Path) -> tuple[float, Outcome]:
        async with emulated_modems(modems_count, realistic=True, scale=scale, seed=seed) as m:
            outcome = await gammu_outbound(m, workload, path)
            return _share(m, outcome), outcome

    if gammu_dir is None:
        return await ours(), None
    if scale == 1.0:  # real time: the two barely load the CPU, run them side by side
        a, b = await asyncio.gather(ours(), theirs(gammu_dir))
        return a, b
    return await ours(), await theirs(gammu_dir)


def _share(modems: Modems, outcome: Outcome) -> float:
    """Air time while every modem still had work: from queueing to the last send's start."""
    last_start = max(start for radio in modems.radios for start, _, _ in radio.sends)
    return busy_fraction(modems.radios, outcome.started, last_start)


def _physical_rows(
    label: str, result: tuple[tuple[float, Outcome], tuple[float, Outcome] | None]
) -> list[Row]:
    (ours_share, ours), gammu = result
    rows = [
        Row(
            f"{label}: ModemPool, share of physical rate",
            100 * ours_share,
            "%",
            f"≥ {PHYSICAL_TARGET:.0%}",
            ours_share >= PHYSICAL_TARGET,
            _latency(ours),
        ),
    ]
    if gammu is not None:
        share, outcome = gammu
        rows.append(
            Row(
                f"{label}: gammu-smsd, share of physical rate",
                100 * share,
                "%",
                "",
                None,
                _latency(outcome),
            )
        )
    return rows


async def measure(size: int, workdir: Path) -> Section:
    section = Section(NAME, TITLE, size, method=METHOD)
    if gammu_smsd.available() is None:
        section.notes.append(
            "gammu-smsd is not installed (`apt-get install -y gammu-smsd`): not measured."
        )
        return section
    section.notes += NOTES
    section.rows += await _compare_fast(size, workdir)
    modems = REALISTIC_MODEMS if size >= 50 else 2
    per_modem = max(2, size // (4 * modems))
    section.rows += _physical_rows(
        f"realistic × 1/10, {modems} modems, {per_modem * modems} SMS",
        await _physical(modems, per_modem, REALISTIC_SCALE, 3, workdir / "real"),
    )
    if size >= 50:
        section.rows += _physical_rows(
            f"realistic, real time, 1 modem, {REALTIME_MESSAGES} SMS",
            await _physical(1, REALTIME_MESSAGES, 1.0, 4, workdir / "realtime"),
        )
    else:
        section.notes.append("The real-time run was skipped (size < 50).")
    return section


def run(size: int = DEFAULT_SIZE) -> Section:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-gammu-") as workdir:
        section = asyncio.run(measure(size, Path(workdir)))
    section.seconds = time.perf_counter() - started
    return section

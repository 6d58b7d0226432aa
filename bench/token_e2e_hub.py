"""One hub worker for bench/token_e2e, in a process of its own, measured from inside.

    python -m bench.token_e2e_hub --config HUB.toml --worker-id ID

Runs the hub exactly as `pintar hub` does (`operator_data.hub.service.serve`: store,
registry, `MqttTransport`, `P2apstClient`, `Hub`), with three additions that only record:

- the MQTT transport is a subclass of the production one that stamps (wall clock) when the
  hub takes each inbound SMS from it and when the hub first hands each SMS to `send()`;
- the P2APST client reaches the simulator through a TCP pass-through in this process, which
  forwards each chunk first and then notes (time, bytes) — the frames are decoded by the
  benchmark afterwards, not here;
- a SQLAlchemy `before_cursor_execute` / `commit` listener counts the statements (by first
  keyword) and the committed transactions of every engine in this process.

The benchmark talks to it over stdin/stdout, one JSON object a line: the process prints
`{"status": "ready", ...}` once it reached the broker, then answers each command line:
`snapshot` (CPU seconds of this process from getrusage, statement and commit counts),
`stamps` (what was recorded since the last `stamps`), `profile_start` / `profile_stop`
(pyinstrument over the main thread, summarised) and `stop`. EOF on stdin stops it too, so
it never outlives the benchmark; so does SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import os
import resource
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from gateway.mqtt import MqttTransport
from gateway.transport import InboundSms, OutboundSms, TransportEvent
from operator_data.hub import service
from operator_data.settings import load_settings

#: Lines longer than this from the parent are refused (commands are a few bytes).
LINE_LIMIT = 1 << 20


class Recorder:
    """Everything this process records, until the parent collects it."""

    def __init__(self) -> None:
        self.handed_in: dict[str, float] = {}  # inbound SMS event id -> taken by the hub
        self.handed_out: dict[str, float] = {}  # message id -> first send() call
        # (connection number, outbound?, wall time, chunk) as the tap forwarded them
        self.chunks: list[tuple[int, bool, float, bytes]] = []
        self.statements: Counter[str] = Counter()
        self.commits = 0

    def take(self) -> dict[str, Any]:
        document = {
            "handed_in": self.handed_in,
            "handed_out": self.handed_out,
            "p2apst": [
                [conn, outbound, at, base64.b64encode(data).decode()]
                for conn, outbound, at, data in self.chunks
            ],
        }
        self.handed_in, self.handed_out, self.chunks = {}, {}, []
        return document


RECORD = Recorder()


class TimedMqttTransport(MqttTransport):
    """The production transport; only notes when the hub took an event or sent an SMS."""

    async def send(self, sms: OutboundSms) -> bool:
        RECORD.handed_out.setdefault(sms.message_id, time.time())
        return await super().send(sms)

    async def events(self) -> AsyncIterator[TransportEvent]:
        async for item in super().events():
            if isinstance(item, InboundSms):
                RECORD.handed_in.setdefault(item.event_id, time.time())
            yield item


def _count_statement(
    conn: object, cursor: object, statement: str, *args: object, **kwargs: object
) -> None:
    verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
    RECORD.statements[verb] += 1


def _count_commit(conn: object) -> None:
    RECORD.commits += 1


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


class Tap:
    """127.0.0.1:<port> → the simulator: forwards, then notes each chunk with its time."""

    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._connections = 0

    async def __aenter__(self) -> Tap:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._connections += 1
        number = self._connections
        for task in (
            asyncio.create_task(self._pump(number, reader, up_writer, outbound=True)),
            asyncio.create_task(self._pump(number, up_reader, writer, outbound=False)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self,
        number: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        outbound: bool,
    ) -> None:
        try:
            while data := await reader.read(65536):
                now = time.time()
                writer.write(data)  # forward first: the tap must not hold traffic up
                RECORD.chunks.append((number, outbound, now, data))
        except ConnectionError:
            pass
        finally:
            writer.close()


def _say(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document) + "\n")
    sys.stdout.flush()


async def _control(stop: asyncio.Event) -> None:
    """Answers the parent's command lines until `stop`, EOF or a `stop` command."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    profiling: contextlib.ExitStack | None = None
    profile: Any = None
    while not stop.is_set():
        line = await reader.readline()
        if not line:
            break
        command = json.loads(line).get("cmd")
        if command == "snapshot":
            _say(
                {
                    "reply": command,
                    "cpu": _cpu_seconds(),
                    "statements": dict(RECORD.statements),
                    "commits": RECORD.commits,
                    "pid": os.getpid(),
                }
            )
        elif command == "stamps":
            _say({"reply": command, **RECORD.take()})
        elif command == "profile_start":
            from bench.profiling import sampled  # pyinstrument: only when asked

            profiling = contextlib.ExitStack()
            profile = profiling.enter_context(sampled())
            _say({"reply": command})
        elif command == "profile_stop":
            summary = "no profile was started"
            if profiling is not None:
                profiling.close()
                summary = profile.summary(8)
                profiling = None
            _say({"reply": command, "summary": summary})
        elif command == "stop":
            _say({"reply": command})
            break
        else:
            _say({"reply": command, "error": "unknown command"})
    stop.set()


async def _main(config: Path, worker_id: str) -> None:
    event.listen(Engine, "before_cursor_execute", _count_statement)
    event.listen(Engine, "commit", _count_commit)
    first = load_settings(config)
    if first.p2apst.host is None:
        raise SystemExit("token_e2e hub: the configuration has no [p2apst] host")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with Tap(first.p2apst.host, first.p2apst.port) as tap:
        # The client connects to the tap, which forwards to the configured simulator.
        os.environ["PINTAR_P2APST__HOST"] = "127.0.0.1"
        os.environ["PINTAR_P2APST__PORT"] = str(tap.port)
        settings = load_settings(config)
        service.MqttTransport = TimedMqttTransport  # type: ignore[attr-defined]

        def ready(node: service.RunningHub) -> None:
            _say({"hub": node.worker_id, "status": "ready", "pid": os.getpid()})

        control = asyncio.create_task(_control(stop))
        try:
            await service.serve(settings, stop, worker_id=worker_id, on_ready=ready)
        finally:
            control.cancel()
            await asyncio.gather(control, return_exceptions=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.token_e2e_hub", description=__doc__)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--worker-id", required=True)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Every overloaded purchase logs its SLA breach; the benchmark counts sla_events rows.
    logging.getLogger("operator_data.hub.sla").setLevel(logging.ERROR)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.config, args.worker_id))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

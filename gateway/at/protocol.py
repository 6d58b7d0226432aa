"""Command/response correlation over the token stream, and routing of unsolicited codes.

One command is in flight at a time (an asyncio lock). While it is, every line is one of:
the echo of what was written (dropped), a line the command expects (by prefix or pattern),
an unsolicited result code (routed to subscribers, with its body line for `+CMT:`/`+CDS:`),
the final result code, or another intermediate line (kept with the command: the PDU after
`+CMGR:`, the bare text of AT+CGMI).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway.at.errors import (
    CommandTimeout,
    ErrorSource,
    ModemClosed,
    ModemHung,
    command_error,
)
from gateway.at.reader import Discarded, Line, LineEnd, LineReader, Prompt, Token

log = logging.getLogger(__name__)

CTRL_Z = "\x1a"

# -- final result codes -----------------------------------------------------------------------

_OK_RESULTS = frozenset({"OK"})
_PLAIN_ERRORS = frozenset(
    {
        "ERROR",
        "NO CARRIER",
        "BUSY",
        "NO ANSWER",
        "NO DIALTONE",
        "COMMAND NOT SUPPORT",  # Huawei
        "TOO MANY PARAMETERS",  # Huawei
    }
)
_CODED_ERROR = re.compile(r"\+(CMS|CME) ERROR:\s*(.*)")


@dataclass(frozen=True, slots=True)
class FinalResult:
    line: str
    ok: bool
    source: ErrorSource | None = None
    code: int | None = None


def parse_final(line: str) -> FinalResult | None:
    """The final result code on this line, or None if the line is not one."""
    if line in _OK_RESULTS:
        return FinalResult(line, ok=True)
    if line in _PLAIN_ERRORS:
        return FinalResult(line, ok=False, source=ErrorSource.PLAIN)
    match = _CODED_ERROR.fullmatch(line)
    if match is None:
        return None
    source = ErrorSource.CMS if match.group(1) == "CMS" else ErrorSource.CME
    detail = match.group(2).strip()
    # With AT+CMEE=2 (or before CMEE=1 on some firmware) the code is text: no number to classify.
    return FinalResult(line, False, source, int(detail) if detail.isdigit() else None)


# -- unsolicited result codes -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UrcSpec:
    prefix: str
    body_lines: int = 0  # lines after the header that belong to it (the PDU of +CMT/+CDS)


URC_TABLE: tuple[UrcSpec, ...] = (
    UrcSpec("+CMTI:"),  # SMS stored: "SM",<index>
    UrcSpec("+CMT:", 1),  # SMS delivered directly: [<alpha>],<length> / <pdu>
    UrcSpec("+CDSI:"),  # status report stored: "SM",<index>
    UrcSpec("+CDS:", 1),  # status report delivered directly: <length> / <pdu>
    UrcSpec("+CBM:", 1),  # cell broadcast: <length> / <pdu>
    UrcSpec("RING"),
    UrcSpec("+CRING:"),
    UrcSpec("+CLIP:"),
    UrcSpec("+CREG:"),
    UrcSpec("+CGREG:"),
    UrcSpec("+CEREG:"),
    UrcSpec("+CUSD:"),
    UrcSpec("+CIEV:"),
    UrcSpec("^RSSI:"),  # Huawei signal
    UrcSpec("^BOOT:"),
    UrcSpec("^MODE:"),
    UrcSpec("^SRVST:"),
    UrcSpec("^SIMST:"),
    UrcSpec("^SMMEMFULL:"),  # Huawei: message storage full
    UrcSpec("^HCSQ:"),
)


def match_urc(line: str) -> UrcSpec | None:
    for spec in URC_TABLE:
        if line == spec.prefix or line.startswith(spec.prefix):
            return spec
    return None


@dataclass(frozen=True, slots=True)
class Urc:
    """An unsolicited result code. `name` is the prefix without `:` ("" for an unknown line)."""

    name: str
    line: str
    body: str | None = None

    @property
    def args(self) -> str:
        """What follows `NAME:` on the header line, stripped."""
        _, sep, rest = self.line.partition(":")
        return rest.strip() if sep else ""


# -- responses --------------------------------------------------------------------------------

Expect = str | re.Pattern[str]


@dataclass(frozen=True, slots=True)
class Response:
    command: str
    lines: tuple[str, ...]
    final: str

    def prefixed(self, prefix: str) -> list[str]:
        """The arguments of every line starting with `prefix` (e.g. "+CMGS:")."""
        return [line[len(prefix) :].strip() for line in self.lines if line.startswith(prefix)]

    def first(self, prefix: str) -> str | None:
        found = self.prefixed(prefix)
        return found[0] if found else None


@dataclass(slots=True)
class _Pending:
    command: str
    expect: tuple[Expect, ...]
    done: asyncio.Future[FinalResult]
    prompt: asyncio.Future[None] | None = None
    body: str | None = None
    lines: list[str] = field(default_factory=list)

    def expects(self, line: str) -> bool:
        for item in self.expect:
            if isinstance(item, str):
                if line.startswith(item):
                    return True
            elif item.match(line):
                return True
        return False

    def is_echo(self, line: Line) -> bool:
        if line.end is not LineEnd.EOL:
            return True  # only ever the echo of a PDU body (Ctrl-Z) or its cancellation (ESC)
        return line.text == self.command or (self.body is not None and line.text == self.body)


UrcCallback = Callable[[Urc], None]


class AtProtocol:
    """Correlates commands with responses on one serial line; routes URCs to subscribers."""

    def __init__(self, write: Callable[[bytes], object], *, name: str = "modem") -> None:
        self._write = write
        self._name = name
        self._reader = LineReader()
        self._lock = asyncio.Lock()
        self._pending: _Pending | None = None
        self._subscribers: list[UrcCallback] = []
        self._urc_header: tuple[UrcSpec, str, list[str]] | None = None
        self.hung = False
        self.closed = False

    # -- subscriptions ------------------------------------------------------------------------

    def subscribe(self, callback: UrcCallback) -> Callable[[], None]:
        """Call `callback` for every URC; returns the function that unsubscribes."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    # -- input --------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        for token in self._reader.feed(data):
            self._token(token)

    def connection_lost(self, exc: BaseException | None = None) -> None:
        self.closed = True
        pending = self._pending
        if pending is not None and not pending.done.done():
            pending.done.set_exception(ModemClosed(f"{self._name}: port closed ({exc})"))
        if pending is not None and pending.prompt is not None and not pending.prompt.done():
            pending.prompt.set_exception(ModemClosed(f"{self._name}: port closed ({exc})"))

    def _token(self, token: Token) -> None:
        if isinstance(token, Discarded):
            log.warning("%s: discarded an over-long line of %d bytes", self._name, token.size)
        elif isinstance(token, Prompt):
            self._prompt()
        else:
            self._line(token)

    def _prompt(self) -> None:
        pending = self._pending
        if pending is not None and pending.prompt is not None and not pending.prompt.done():
            pending.prompt.set_result(None)
        else:
            log.debug("%s: stray prompt", self._name)

    def _line(self, line: Line) -> None:
        text = line.text
        if self._urc_header is not None:
            spec, header, body = self._urc_header
            body.append(text)
            if len(body) >= spec.body_lines:
                self._urc_header = None
                self._dispatch(Urc(spec.prefix.rstrip(":"), header, "\n".join(body)))
            return
        pending = self._pending
        if pending is not None and not pending.done.done():
            self._line_for_command(pending, line)
            return
        if line.end is not LineEnd.EOL:
            return  # a late echo of a PDU body
        if self._urc(text):
            return
        final = parse_final(text)
        if final is not None:
            log.debug("%s: stray final result %r", self._name, text)
        else:
            self._dispatch(Urc("", text))

    def _line_for_command(self, pending: _Pending, line: Line) -> None:
        text = line.text
        if pending.is_echo(line):
            return
        if pending.expects(text):
            pending.lines.append(text)
            return
        final = parse_final(text)
        if final is not None:
            pending.done.set_result(final)
            return
        # A command's own lines that could look like a URC are claimed by `expect` above; the
        # unprefixed rest (the PDU after +CMGR:, bare text such as AT+CGMI's) is kept.
        if self._urc(text):
            return
        pending.lines.append(text)

    def _urc(self, text: str) -> bool:
        spec = match_urc(text)
        if spec is None:
            return False
        if spec.body_lines:
            self._urc_header = (spec, text, [])
        else:
            self._dispatch(Urc(spec.prefix.rstrip(":"), text))
        return True

    def _dispatch(self, urc: Urc) -> None:
        log.debug("%s: URC %r", self._name, urc)
        for callback in list(self._subscribers):
            try:
                callback(urc)
            except Exception:
                log.exception("%s: URC subscriber failed on %r", self._name, urc)

    # -- commands -----------------------------------------------------------------------------

    def write_raw(self, data: bytes) -> None:
        """Bytes outside any command (ESC to abandon a PDU a crashed run left unfinished)."""
        self._write(data)

    async def command(
        self,
        command: str,
        *,
        time_limit: float,
        expect: Sequence[Expect] = (),
        force: bool = False,
    ) -> Response:
        """Send `command` (without CR) and return its response; raise the typed error."""
        return await self._run(command, None, time_limit=time_limit, expect=expect, force=force)

    async def command_with_prompt(
        self,
        command: str,
        body: str,
        *,
        prompt_time_limit: float,
        time_limit: float,
        expect: Sequence[Expect] = (),
    ) -> Response:
        """`command`, wait for the `> ` prompt, send `body` + Ctrl-Z (AT+CMGS)."""
        return await self._run(
            command, (body, prompt_time_limit), time_limit=time_limit, expect=expect, force=False
        )

    async def _run(
        self,
        command: str,
        body: tuple[str, float] | None,
        *,
        time_limit: float,
        expect: Sequence[Expect],
        force: bool,
    ) -> Response:
        async with self._lock:
            self._check_usable(force)
            loop = asyncio.get_running_loop()
            pending = _Pending(command, tuple(expect), loop.create_future())
            if body is not None:
                pending.prompt = loop.create_future()
                pending.body = body[0]
            # Registered before the write: a fast modem may answer before write() returns.
            self._pending = pending
            try:
                self._write(command.encode("ascii") + b"\r")
                if body is not None and pending.prompt is not None:
                    await self._wait_prompt(pending, pending.prompt, body[1])
                    self._write(body[0].encode("ascii") + CTRL_Z.encode("ascii"))
                try:
                    final = await self._wait(pending.done, command, time_limit, "final result")
                except CommandTimeout as exc:
                    exc.lines = tuple(pending.lines)
                    raise
            finally:
                self._pending = None
                for future in (pending.done, pending.prompt):
                    if future is not None and not future.done():
                        future.cancel()
        if not final.ok:
            assert final.source is not None
            raise command_error(command, final.source, final.code, final.line)
        return Response(command, tuple(pending.lines), final.line)

    async def _wait_prompt(
        self, pending: _Pending, prompt: asyncio.Future[None], time_limit: float
    ) -> None:
        # The modem may refuse with a final result instead of a prompt (e.g. +CMS ERROR: 304).
        waiters: set[asyncio.Future[object]] = {prompt, pending.done}  # type: ignore[arg-type]
        done, _ = await asyncio.wait(
            waiters, timeout=time_limit, return_when=asyncio.FIRST_COMPLETED
        )
        if not done:
            self.hung = True
            # ESC abandons the PDU input if the prompt arrives late, so no half message is sent.
            self._write(b"\x1b")
            raise CommandTimeout(pending.command, time_limit, "prompt")
        if prompt in done:
            prompt.result()
            return
        final = pending.done.result()
        if not final.ok and final.source is not None:
            raise command_error(pending.command, final.source, final.code, final.line)
        raise command_error(pending.command, ErrorSource.PLAIN, None, final.line)

    async def _wait(
        self, future: asyncio.Future[FinalResult], command: str, time_limit: float, what: str
    ) -> FinalResult:
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that
            # arrives as the answer does, leaving the caller's task uncancellable.
            async with asyncio.timeout(time_limit):
                return await future
        except TimeoutError:
            self.hung = True
            raise CommandTimeout(command, time_limit, what) from None

    def _check_usable(self, force: bool) -> None:
        if self.closed:
            raise ModemClosed(f"{self._name}: port closed")
        if self.hung and not force:
            raise ModemHung(f"{self._name}: hung since an earlier timeout; reset it first")

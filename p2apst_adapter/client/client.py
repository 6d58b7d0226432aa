"""The long-lived P2APST client: sign-on, keep-alive, reconnect, purchases that are never
lost or bought twice, and durable token reports."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Self

from p2apst_adapter import messages
from p2apst_adapter.client.journal import JournalEntry, PurchaseJournal, ReportOutbox
from p2apst_adapter.client.link import Link, LinkLost
from p2apst_adapter.client.stan import StanSource
from p2apst_adapter.dialect import (
    P2APST,
    Dialect,
    Framing,
    IsoError,
    IsoMessage,
    NetworkCode,
    ResponseCode,
)
from p2apst_adapter.model import (
    WIB,
    InquiryResult,
    LinkIdentity,
    PurchaseRequest,
    PurchaseResult,
    TokenReport,
)

log = logging.getLogger(__name__)
RC = ResponseCode

#: Answers to a 2200 that do not settle the purchase: ask for its result with advices.
_ASK_AGAIN = frozenset({RC.TIMEOUT, RC.ALREADY_PAID, RC.SIGN_ON_NEEDED, RC.OTHER_ERROR})
#: Answers to an advice that mean "not yet": repeat the advice.
_STILL_OPEN = frozenset({RC.TIMEOUT, RC.SIGN_ON_NEEDED, RC.OTHER_ERROR})


class P2apstUnavailable(ConnectionError):
    """No answer from P2APST for a request that has no durable follow-up (inquiry, echo)."""


@dataclass(frozen=True, slots=True)
class ClientSettings:
    framing: Framing = Framing.LENGTH_PREFIX
    connect_timeout: float = 10.0
    response_timeout: float = 30.0  # for a 2200, inquiry, echo
    advice_timeout: float = 30.0  # for each 2220 / 2221 and 2620 / 2621
    advice_interval: float = 5.0  # pause between an unanswered advice and its repeat
    echo_interval: float = 60.0  # keep-alive on an idle link
    reconnect_initial: float = 0.5
    reconnect_max: float = 60.0
    report_retry_interval: float = 5.0
    #: Token reports in flight at once (each 2620 waits for its own 2630).
    report_window: int = 32
    #: Times a purchase is sent again when an advice says its 2200 never arrived (0063)
    #: before it counts as declined: a worker that died between journalling the 2200 and
    #: writing it leaves exactly that, and the customer's purchase should still go through.
    resend_unreceived: int = 3
    #: Resume every PENDING purchase in the journal with advices on entering. Off where the
    #: journal's owner resumes purchases itself (the hub's sweep drives each open purchase
    #: through `purchase()`, which chases a journalled one), so there is one resumer.
    resume_pending: bool = True
    #: TLS on the link (`tls.client_context`); None: plain TCP, for a leased line or VPN.
    tls: ssl.SSLContext | None = None
    #: The name P2APST's certificate must carry, when it is not the host connected to.
    tls_server_name: str | None = None
    #: The switcher's ISO 8583 dialect (a dialect file's, `dialect.load_dialect`).
    dialect: Dialect = P2APST


def _now() -> datetime:
    return datetime.now(WIB)


async def _nothing() -> list[PurchaseResult]:
    return []


class P2apstClient:
    """`async with P2apstClient(host, port, journal=..., outbox=...) as client:`.

    Entering starts a connection supervisor (connect, sign on, echo, reconnect with
    exponential back-off), resumes every PENDING purchase in the journal with an advice,
    and starts delivering unacknowledged token reports. Leaving cancels all of it; whatever
    was not finished stays PENDING/unacknowledged in storage and resumes next time.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        journal: PurchaseJournal,
        outbox: ReportOutbox | None = None,
        identity: LinkIdentity | None = None,
        settings: ClientSettings | None = None,
        stan: StanSource | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._host = host
        self._port = port
        self._journal = journal
        self._outbox = outbox
        self.identity = identity or LinkIdentity()
        self.settings = settings or ClientSettings()
        self._stan = stan or StanSource()
        self._clock = clock
        self._link: Link | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self._tasks: set[asyncio.Task[object]] = set()
        self._inflight: dict[str, asyncio.Task[PurchaseResult]] = {}
        self._reports_wake = asyncio.Event()
        self._reports_changed = asyncio.Condition()
        self._resumed: asyncio.Task[list[PurchaseResult]] | None = None
        self.sign_ons = 0  # successful sign-ons, one per (re)connection
        self._down_since: float | None = None  # monotonic; None while signed on

    # --- lifetime ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._down_since = time.monotonic()  # down until the first sign-on
        self._spawn(self._supervise())
        self._resumed = asyncio.create_task(
            self._resume_pending() if self.settings.resume_pending else _nothing()
        )
        if self._outbox is not None:
            self._spawn(self._deliver_reports(self._outbox))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._closing = True
        tasks: list[asyncio.Task[object]] = [*self._tasks, *self._inflight.values()]
        if self._resumed is not None:
            tasks.append(self._resumed)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._link is not None:
            await self._link.close()
            self._link = None

    def _spawn(self, coroutine: Coroutine[object, object, object]) -> None:
        task: asyncio.Task[object] = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def down_for(self) -> float | None:
        """Seconds the link has been down (not signed on), None while it is up."""
        since = self._down_since
        return None if since is None else time.monotonic() - since

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def wait_resumed(self) -> list[PurchaseResult]:
        """The results of the purchases that were PENDING when the client started."""
        assert self._resumed is not None, "use the client as an async context manager"
        return await asyncio.shield(self._resumed)

    # --- connection supervision ------------------------------------------------------------

    async def _supervise(self) -> None:
        """Keeps a signed-on link, whatever happens: any error that escapes one connection's
        life is logged and the link re-established with back-off (the supervisor must never
        end: every purchase waits for it). How long the link has been down is `down_for()`,
        which the hub watches to raise its alarm."""
        delay = self.settings.reconnect_initial
        while not self._closing:
            try:
                delay = await self._connection(delay)
            except Exception:
                log.exception("p2apst: link supervisor error; reconnecting in %.2fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.reconnect_max)

    async def _connection(self, delay: float) -> float:
        """One connection attempt and, once signed on, its life; the next back-off."""
        try:
            link = await Link.open(
                self._host,
                self._port,
                self.settings.framing,
                self.settings.connect_timeout,
                tls=self.settings.tls,
                server_hostname=self.settings.tls_server_name,
                dialect=self.settings.dialect,
            )
        except (OSError, TimeoutError) as error:
            log.info("p2apst: connect failed (%s); retry in %.2fs", error, delay)
            await asyncio.sleep(delay)
            return min(delay * 2, self.settings.reconnect_max)
        try:
            await self._sign_on(link)
        except (LinkLost, TimeoutError, P2apstUnavailable) as error:
            hint = ""
            if isinstance(error, LinkLost) and link.tls_version is not None:
                # TLS 1.3 servers refuse a client certificate after the handshake, by
                # closing: the one sign of it the client gets.
                hint = " (over TLS: does P2APST accept our client certificate?)"
            log.info("p2apst: sign-on failed (%s)%s; retry in %.2fs", error, hint, delay)
            await link.close()
            await asyncio.sleep(delay)
            return min(delay * 2, self.settings.reconnect_max)
        except BaseException:
            await link.close()
            raise
        self._link = link
        self.sign_ons += 1
        log.info("p2apst: signed on (%s)", link.tls_version or "plain TCP")
        self._down_since = None
        self._connected.set()
        self._reports_wake.set()
        try:
            await self._keep_alive(link)
        finally:
            self._connected.clear()
            self._link = None
            self._down_since = time.monotonic()
            await link.close()
        return self.settings.reconnect_initial

    async def _sign_on(self, link: Link) -> None:
        message = messages.network_request(NetworkCode.SIGN_ON, self._stan.next(), self._clock())
        answer = await link.request(message, self.settings.response_timeout)
        if answer.response_code != RC.SUCCESS:
            raise P2apstUnavailable(f"sign-on refused with {answer.response_code}")

    async def _keep_alive(self, link: Link) -> None:
        while not link.closed.is_set():
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                # that races the link closing, and the client's close() then waits for ever
                # (seen: a hub test's teardown hung once in a dozen runs).
                async with asyncio.timeout(self.settings.echo_interval):
                    await link.closed.wait()
            except TimeoutError:
                message = messages.network_request(
                    NetworkCode.ECHO, self._stan.next(), self._clock()
                )
                try:
                    await link.request(message, self.settings.response_timeout)
                except (TimeoutError, LinkLost):
                    log.warning("p2apst: echo test unanswered; reconnecting")
                    return

    async def _request(self, message: IsoMessage, within: float) -> IsoMessage:
        """Sends on the current link, waiting for one to exist. TimeoutError / LinkLost."""
        await self._connected.wait()
        link = self._link
        if link is None:
            raise LinkLost("the link went down")
        return await link.request(message, within)

    # --- simple requests -------------------------------------------------------------------

    async def echo(self) -> None:
        message = messages.network_request(NetworkCode.ECHO, self._stan.next(), self._clock())
        answer = await self._unretried(message)
        if answer.response_code != RC.SUCCESS:
            raise P2apstUnavailable(f"echo answered {answer.response_code}")

    async def inquiry(
        self, *, meter_number: str | None = None, customer_id: str | None = None
    ) -> InquiryResult:
        """Looks a customer up (2100/2110). Has no effect at P2APST, so it is not retried:
        raises P2apstUnavailable when there is no link or no answer in time."""
        message = messages.inquiry_request(
            self.identity,
            self._stan.next(),
            self._clock(),
            meter_number=meter_number,
            customer_id=customer_id,
            dialect=self.settings.dialect,
        )
        return messages.read_inquiry_response(await self._unretried(message), self.settings.dialect)

    async def _unretried(self, message: IsoMessage) -> IsoMessage:
        timeout = self.settings.response_timeout
        try:
            async with asyncio.timeout(timeout):
                return await self._request(message, timeout)
        except (TimeoutError, LinkLost) as error:
            raise P2apstUnavailable(f"{message.mti} unanswered: {error!r}") from error

    # --- purchases ---------------------------------------------------------------------------

    async def purchase(self, request: PurchaseRequest) -> PurchaseResult:
        """Buys a token; returns when P2APST has given a final answer.

        The same `switcher_reference` always yields the same result and at most one 2200:
        a finished purchase is answered from the journal, one in progress is joined. Link
        trouble never surfaces here: the purchase is chased with advices until answered.
        Cancelling the caller does not cancel the purchase.
        """
        key = request.switcher_reference
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._purchase(request))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        return await asyncio.shield(task)

    async def _purchase(self, request: PurchaseRequest) -> PurchaseResult:
        # Journalled first, read never: `begin` answers with what was recorded before
        # (after a restart, or by another process), so a new purchase costs one write.
        entry = JournalEntry(request, self._stan.next(), self._clock())
        stored = await self._journal.begin(entry)
        if (stored.stan, stored.sent_at) != (entry.stan, entry.sent_at):
            if stored.request != request:
                log.warning("p2apst: key %s reused with other details", stored.key)
            if stored.result is not None:
                return stored.result
            return await self._chase(stored)
        if stored.result is not None:
            return stored.result
        message = messages.purchase_request(
            self.identity, request, entry.stan, entry.sent_at, self.settings.dialect
        )
        try:
            answer = await self._request(message, self.settings.response_timeout)
        except (TimeoutError, LinkLost) as error:
            log.info("p2apst: 2200 %s unanswered (%r); sending advice", entry.stan, error)
            return await self._chase(stored)
        if answer.response_code in _ASK_AGAIN:
            return await self._chase(stored)
        return await self._settle(stored, answer, via_advice=False)

    async def _settle(
        self, entry: JournalEntry, answer: IsoMessage, *, via_advice: bool
    ) -> PurchaseResult:
        result = messages.read_purchase_response(
            answer, entry.request, via_advice=via_advice, dialect=self.settings.dialect
        )
        await self._journal.complete(entry.key, result)
        return result

    async def _chase(self, entry: JournalEntry) -> PurchaseResult:
        """Advice (2220), then repeat advices (2221), until P2APST says how it ended.

        An advice answered 0063 ("no such payment") means the 2200 never arrived, so it is
        sent again, unchanged (same STAN and time, which later advices name), up to
        `resend_unreceived` times. That cannot pay twice: P2APST keys a purchase by its
        switcher reference, so a late original and its resend meet as one purchase.
        """
        try:
            await self._journal.advising(entry.key)
        except Exception:
            # The mark is the journal owner's bookkeeping; the answer is what matters.
            log.exception("p2apst: journal could not mark %s as advising", entry.key)
        repeat = False
        resent = 0
        while True:
            message = messages.advice(
                self.identity,
                entry.request,
                repeat=repeat,
                stan=self._stan.next(),
                when=self._clock(),
                original_stan=entry.stan,
                original_time=entry.sent_at,
                dialect=self.settings.dialect,
            )
            repeat = True
            try:
                answer = await self._request(message, self.settings.advice_timeout)
            except (TimeoutError, LinkLost) as error:
                log.info("p2apst: advice for %s unanswered (%r)", entry.key, error)
                await asyncio.sleep(self.settings.advice_interval)
                continue
            code = answer.response_code
            if code in _STILL_OPEN:
                await asyncio.sleep(self.settings.advice_interval)
                continue
            if code == RC.NO_PAYMENT and resent < self.settings.resend_unreceived:
                resent += 1
                repeat = False
                log.warning(
                    "p2apst: the 2200 of %s never arrived; sending it again (%d of %d)",
                    entry.key,
                    resent,
                    self.settings.resend_unreceived,
                )
                settled = await self._resend(entry)
                if settled is not None:
                    return settled
                continue
            try:
                return await self._settle(entry, answer, via_advice=True)
            except IsoError as error:
                log.error("p2apst: unreadable advice answer for %s: %s", entry.key, error)
                await asyncio.sleep(self.settings.advice_interval)

    async def _resend(self, entry: JournalEntry) -> PurchaseResult | None:
        """The journalled 2200 again; its result, or None when advices must find it."""
        message = messages.purchase_request(
            self.identity, entry.request, entry.stan, entry.sent_at, self.settings.dialect
        )
        try:
            answer = await self._request(message, self.settings.response_timeout)
        except (TimeoutError, LinkLost) as error:
            log.info("p2apst: resent 2200 %s unanswered (%r)", entry.stan, error)
            return None
        if answer.response_code in _ASK_AGAIN:
            return None
        try:
            return await self._settle(entry, answer, via_advice=False)
        except IsoError as error:
            log.error("p2apst: unreadable answer to the resent 2200 of %s: %s", entry.key, error)
            return None

    async def _resume_pending(self) -> list[PurchaseResult]:
        pending = await self._journal.pending()
        if pending:
            log.info("p2apst: resuming %d pending purchase(s) with advices", len(pending))
        return list(await asyncio.gather(*(self.purchase(entry.request) for entry in pending)))

    # --- token reports ------------------------------------------------------------------------

    async def report_token_result(self, report: TokenReport) -> None:
        """Records the report in the outbox and returns; delivery (2620, then 2621 repeats
        until a 2630/2631 with 0000) happens in the background."""
        if self._outbox is None:
            raise RuntimeError("this client was created without a report outbox")
        await self._outbox.add(report)
        self._reports_wake.set()

    def reports_recorded(self) -> None:
        """The caller has recorded reports in the outbox itself, in the transaction of
        what caused them (so none is lost between the two): deliver them. Saves the second
        write `report_token_result` would make."""
        if self._outbox is None:
            raise RuntimeError("this client was created without a report outbox")
        self._reports_wake.set()

    async def drain_reports(self) -> None:
        """Waits until P2APST has acknowledged every report in the outbox."""
        if self._outbox is None:
            return
        outbox = self._outbox
        async with self._reports_changed:
            while await outbox.unacknowledged():
                await self._reports_changed.wait()

    async def _deliver_reports(self, outbox: ReportOutbox) -> None:
        """Oldest first, up to `report_window` reports in flight at once (each its own
        STAN, answered independently); the ones answered 0000 are acknowledged together.
        A report left unanswered stops the round: the rest wait for the retry."""
        attempted: set[str] = set()
        window = self.settings.report_window
        while True:
            await self._reports_wake.wait()
            self._reports_wake.clear()
            failed = False
            pending = list(await outbox.unacknowledged())
            for first in range(0, len(pending), window):
                chunk = pending[first : first + window]
                answered = await asyncio.gather(
                    *(self._send_report(r, repeat=r.report_id in attempted) for r in chunk)
                )
                done = [r.report_id for r, ok in zip(chunk, answered, strict=True) if ok]
                for report, ok in zip(chunk, answered, strict=True):
                    if ok:
                        attempted.discard(report.report_id)
                    else:
                        attempted.add(report.report_id)
                if done:
                    await outbox.acknowledge_many(done)
                    async with self._reports_changed:
                        self._reports_changed.notify_all()
                if len(done) < len(chunk):
                    failed = True
                    break
            if failed:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.report_retry_interval):
                        await self._reports_wake.wait()  # not wait_for: see _keep_alive
                self._reports_wake.set()

    async def _send_report(self, report: TokenReport, *, repeat: bool) -> bool:
        message = messages.token_report(
            self.identity,
            report,
            repeat=repeat,
            stan=self._stan.next(),
            when=self._clock(),
            dialect=self.settings.dialect,
        )
        try:
            answer = await self._request(message, self.settings.advice_timeout)
        except (TimeoutError, LinkLost) as error:
            log.info("p2apst: report %s unanswered (%r)", report.report_id, error)
            return False
        return answer.response_code == RC.SUCCESS


__all__ = ["ClientSettings", "P2apstClient", "P2apstUnavailable"]

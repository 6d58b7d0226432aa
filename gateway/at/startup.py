"""The start-up sequence: probe, reset, echo off, numeric errors, SIM, network, SMS settings.

Each step either must succeed (raise StartupError with the reaction that says what to do with
the modem) or has fall-backs and is only logged when all of them fail.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

from gateway.at.config import ModemConfig
from gateway.at.errors import (
    BusyError,
    CommandError,
    CommandTimeout,
    ModemError,
    Reaction,
    StartupError,
)
from gateway.at.protocol import AtProtocol, Expect, Response
from gateway.at.responses import (
    RegistrationStatus,
    ResponseError,
    Signal,
    StorageStatus,
    cnmi_supported,
    parse_cnmi_test,
    parse_cpin,
    parse_cpms_set,
    parse_cpms_test,
    parse_creg,
    parse_csms,
    parse_csq,
)

log = logging.getLogger(__name__)

CREG_ANSWER = re.compile(r"\+CREG: *\d+, *\d")  # "+CREG: 1" alone is the URC, not the answer
_NO_SIM_CME = frozenset({10, 13})  # SIM not inserted / SIM failure


@dataclass(frozen=True, slots=True)
class ModemInfo:
    registration: RegistrationStatus
    signal: Signal | None
    smsc: str | None
    storage: StorageStatus | None
    cnmi: str | None  # None: no notifications, the periodic sweep finds messages
    ack_direct: bool  # +CMT/+CDS must be acknowledged with AT+CNMA (AT+CSMS service 1)


class StartUp:
    def __init__(self, protocol: AtProtocol, config: ModemConfig) -> None:
        self._protocol = protocol
        self._config = config
        self._name = config.label

    async def _cmd(
        self, command: str, expect: tuple[Expect, ...] = (), *, step: str | None = None
    ) -> Response:
        try:
            return await self._protocol.command(
                command, time_limit=self._config.command_timeout, expect=expect
            )
        except CommandTimeout as exc:
            raise StartupError(step or command, str(exc), Reaction.HUNG) from exc

    async def _optional(self, command: str, expect: tuple[Expect, ...] = ()) -> Response | None:
        try:
            return await self._cmd(command, expect)
        except CommandError as exc:
            log.info("%s: %s refused (%s); carrying on", self._name, command, exc.final)
            return None

    async def run(self) -> ModemInfo:
        await self._probe()
        if await self._optional("ATZ") is None:
            await self._optional("AT&F")
        await self._optional("ATE0")
        await self._optional("AT+CMEE=1")
        await self._sim()
        registration = await self._registration()
        signal = await self._signal()
        try:
            await self._cmd("AT+CMGF=0", step="PDU mode")
        except CommandError as exc:
            raise StartupError("PDU mode", exc.final, Reaction.REJECTED) from exc
        smsc = await self._smsc()
        ack_direct = await self._csms()
        storage = await self._storage()
        cnmi = await self._cnmi()
        await self._optional("AT+CMMS=2")
        return ModemInfo(registration, signal, smsc, storage, cnmi, ack_direct)

    async def _probe(self) -> None:
        # ESC first: a modem left waiting at a "> " prompt by a crashed run drops that PDU
        # instead of reading our AT as PDU text.
        self._protocol.write_raw(b"\x1b")
        last: ModemError | None = None
        for _ in range(self._config.probe_attempts):
            try:
                await self._protocol.command(
                    "AT", time_limit=self._config.probe_timeout, force=True
                )
            except CommandTimeout as exc:
                last = exc
                continue
            except CommandError as exc:  # garbage before the AT: answered ERROR; try again
                last = exc
                continue
            self._protocol.hung = False
            return
        raise StartupError("probe", f"no OK to AT: {last}", Reaction.HUNG)

    async def _sim(self) -> None:
        status = await self._cpin()
        if status == "READY":
            return
        if status != "SIM PIN":
            raise StartupError("SIM", f"+CPIN: {status}", Reaction.SECURITY)
        if self._config.pin is None:
            raise StartupError(
                "SIM", "the SIM asks for a PIN and none is configured", Reaction.SECURITY
            )
        try:
            # Never retried: a second wrong PIN brings the SIM closer to needing the PUK.
            await self._cmd(f'AT+CPIN="{self._config.pin}"', step="PIN entry")
        except CommandError as exc:
            raise StartupError("PIN entry", exc.final, Reaction.SECURITY) from exc
        for _ in range(self._config.pin_ready_attempts):
            if await self._cpin() == "READY":
                return
            await asyncio.sleep(self._config.pin_poll_interval)
        raise StartupError("SIM", "not READY after the PIN was accepted", Reaction.SECURITY)

    async def _cpin(self) -> str:
        for _ in range(self._config.pin_ready_attempts):
            try:
                response = await self._cpin_query()
            except BusyError:  # SIM busy while it initialises
                await asyncio.sleep(self._config.pin_poll_interval)
                continue
            except CommandError as exc:
                reaction = Reaction.NO_SIM if exc.code in _NO_SIM_CME else exc.reaction
                if not reaction.modem_out_of_service:
                    reaction = Reaction.NO_SIM
                raise StartupError("SIM", exc.final, reaction) from exc
            status = response.first("+CPIN:")
            if status is None:
                raise StartupError("SIM", "AT+CPIN? gave no +CPIN: line", Reaction.NO_SIM)
            return parse_cpin(status)
        raise StartupError("SIM", "SIM busy for too long", Reaction.NO_SIM)

    async def _cpin_query(self) -> Response:
        try:
            return await self._protocol.command(
                "AT+CPIN?", time_limit=self._config.command_timeout, expect=("+CPIN:",)
            )
        except CommandTimeout as exc:
            status = next((line for line in exc.lines if line.startswith("+CPIN:")), None)
            if status is None:
                raise StartupError("SIM", str(exc), Reaction.HUNG) from exc
            # Old Wavecoms end `+CPIN: READY` with no final result: take the line, and
            # clear the hung mark the timeout set, since the modem did answer.
            log.info("%s: AT+CPIN? answered %r without a final result", self._name, status)
            self._protocol.hung = False
            return Response("AT+CPIN?", (status,), "")

    async def _registration(self) -> RegistrationStatus:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.registration_timeout
        status = RegistrationStatus.UNKNOWN
        while True:
            response = await self._optional("AT+CREG?", (CREG_ANSWER,))
            answer = response.first("+CREG:") if response is not None else None
            if answer is not None:
                try:
                    status = parse_creg(answer)
                except ResponseError as exc:
                    log.warning("%s: %s", self._name, exc)
            if status.registered:
                return status
            if loop.time() >= deadline:
                raise StartupError(
                    "registration", f"not registered ({status.name})", Reaction.NETWORK
                )
            await asyncio.sleep(self._config.registration_poll_interval)

    async def _signal(self) -> Signal | None:
        response = await self._optional("AT+CSQ", ("+CSQ:",))
        answer = response.first("+CSQ:") if response is not None else None
        if answer is None:
            return None
        try:
            signal = parse_csq(answer)
        except ResponseError as exc:
            log.warning("%s: %s", self._name, exc)
            return None
        log.info(
            "%s: signal rssi=%d (%s dBm) ber=%d", self._name, signal.rssi, signal.dbm, signal.ber
        )
        return signal

    async def _smsc(self) -> str | None:
        response = await self._when_not_busy("AT+CSCA?", ("+CSCA:",))
        answer = response.first("+CSCA:") if response is not None else None
        current = answer.split(",")[0].strip().strip('"') if answer else None
        wanted = self._config.smsc
        if wanted is None or wanted == current:
            return current
        kind = 145 if wanted.startswith("+") else 129
        if await self._optional(f'AT+CSCA="{wanted}",{kind}') is None:
            log.warning(
                "%s: could not set the SMSC to %s; it stays %s", self._name, wanted, current
            )
            return current
        return wanted

    async def _when_not_busy(self, command: str, expect: tuple[Expect, ...]) -> Response | None:
        """`_optional`, retried with back-off while the SIM answers busy (+CME ERROR: 14, a
        Qualcomm M6280 on AT+CSCA? just after start, recorded)."""
        delay = self._config.pin_poll_interval
        for _ in range(self._config.pin_ready_attempts - 1):
            try:
                return await self._cmd(command, expect)
            except BusyError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            except CommandError as exc:
                log.info("%s: %s refused (%s); carrying on", self._name, command, exc.final)
                return None
        return await self._optional(command, expect)

    async def _csms(self) -> bool:
        response = await self._optional("AT+CSMS?", ("+CSMS:",))
        answer = response.first("+CSMS:") if response is not None else None
        if answer is None:
            return False
        try:
            return parse_csms(answer) == 1
        except ResponseError:
            return False

    async def _storage(self) -> StorageStatus | None:
        candidates = list(self._config.storages)
        response = await self._optional("AT+CPMS=?", ("+CPMS:",))
        answer = response.first("+CPMS:") if response is not None else None
        if answer is not None:
            try:
                allowed = parse_cpms_test(answer)
                candidates = [s for s in candidates if all(s in group for group in allowed)]
            except ResponseError as exc:
                log.warning("%s: %s", self._name, exc)
        for storage in candidates:
            # Three memories first; a modem with only two (an old Wavecom, recorded) refuses
            # that and takes the two-memory form.
            for count in (3, 2):
                command = "AT+CPMS=" + ",".join(f'"{storage}"' for _ in range(count))
                response = await self._optional(command, ("+CPMS:",))
                if response is not None:
                    break
            if response is None:
                continue
            answer = response.first("+CPMS:")
            try:
                return parse_cpms_set(answer or "", storage)
            except ResponseError:
                return StorageStatus(storage, 0, 0)
        log.warning(
            "%s: no message storage of %s accepted; using the default",
            self._name,
            self._config.storages,
        )
        return None

    async def _cnmi(self) -> str | None:
        variants = list(self._config.cnmi_variants)
        response = await self._optional("AT+CNMI=?", ("+CNMI:",))
        answer = response.first("+CNMI:") if response is not None else None
        if answer is not None:
            try:
                allowed = parse_cnmi_test(answer)
                variants = [v for v in variants if cnmi_supported(v, allowed)] or variants
            except ResponseError as exc:
                log.warning("%s: %s", self._name, exc)
        for variant in variants:
            if await self._optional(f"AT+CNMI={variant}") is not None:
                return variant
        log.warning("%s: no AT+CNMI variant accepted; relying on the storage sweep", self._name)
        return None

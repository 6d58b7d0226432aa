"""Modem errors: the `+CMS`/`+CME` classification table and the typed exceptions built from it.

The table is the one in at-modems.md ("Errors worth classifying"); every code the table does
not name is REJECTED (the modem refused this request and retrying it will not help), and a
bare `ERROR` (no code, e.g. before `AT+CMEE=1`) is UNKNOWN.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ErrorSource(Enum):
    CMS = "+CMS ERROR"  # message service (27.005)
    CME = "+CME ERROR"  # equipment (27.007)
    PLAIN = "ERROR"  # a final result with no code (ERROR, NO CARRIER, ...)


class Reaction(Enum):
    """What the owner of a modem does about an error (the table's third column)."""

    STORAGE_FULL = "storage-full"  # read and delete stored messages, then continue
    INVALID_INDEX = "invalid-index"  # skip the index, re-list
    BUSY = "busy"  # back off and retry
    NETWORK = "network"  # retry later, maybe on another modem
    NO_SIM = "no-sim"  # modem out of service
    SECURITY = "security"  # modem out of service, alert
    UNKNOWN = "unknown"  # retry a few times, then fail the message
    HUNG = "hung"  # reset the modem, retry the message elsewhere
    REJECTED = "rejected"  # not in the table: the request itself is refused; don't retry

    @property
    def retryable(self) -> bool:
        """Can the operation (e.g. sending one SMS) succeed if tried again?"""
        return self not in (Reaction.REJECTED, Reaction.INVALID_INDEX)

    @property
    def modem_out_of_service(self) -> bool:
        return self in (Reaction.NO_SIM, Reaction.SECURITY)

    @property
    def alert(self) -> bool:
        return self is Reaction.SECURITY


@dataclass(frozen=True, slots=True)
class ErrorRule:
    source: ErrorSource
    codes: frozenset[int]
    reaction: Reaction
    meaning: str


def _rule(source: ErrorSource, codes: set[int], reaction: Reaction, meaning: str) -> ErrorRule:
    return ErrorRule(source, frozenset(codes), reaction, meaning)


CMS, CME = ErrorSource.CMS, ErrorSource.CME

ERROR_TABLE: tuple[ErrorRule, ...] = (
    _rule(CMS, {322}, Reaction.STORAGE_FULL, "SIM/memory full"),
    _rule(CMS, {321, 516}, Reaction.INVALID_INDEX, "invalid memory index"),
    _rule(CMS, {512, 535}, Reaction.BUSY, "busy (e.g. an SMS arriving)"),
    _rule(CME, {515, 14}, Reaction.BUSY, "busy (command in progress / SIM busy)"),
    _rule(CMS, {38, 41, 42, 47, 111, 331, 332}, Reaction.NETWORK, "network problem / no service"),
    _rule(CMS, {313, 314, 315}, Reaction.NO_SIM, "no SIM"),
    _rule(CMS, {302, 311, 312, 316, 317, 318}, Reaction.SECURITY, "security (PIN/PUK)"),
    _rule(CMS, {500}, Reaction.UNKNOWN, "unknown error"),
)

_BY_CODE: dict[tuple[ErrorSource, int], ErrorRule] = {
    (rule.source, code): rule for rule in ERROR_TABLE for code in rule.codes
}


def classify(source: ErrorSource, code: int | None) -> Reaction:
    if code is None:
        return Reaction.UNKNOWN
    rule = _BY_CODE.get((source, code))
    return rule.reaction if rule is not None else Reaction.REJECTED


class AtError(Exception):
    """Base of everything the AT driver raises."""


class ModemError(AtError):
    """An operation on a modem failed; `reaction` says what to do about it."""

    reaction: Reaction = Reaction.UNKNOWN


class CommandError(ModemError):
    """The modem answered a command with an error result code."""

    def __init__(self, command: str, source: ErrorSource, code: int | None, final: str) -> None:
        where = f"{source.value}: {code}" if code is not None else final
        super().__init__(f"{command!r} failed with {where} ({self.reaction.value})")
        self.command = command
        self.source = source
        self.code = code
        self.final = final


class StorageFullError(CommandError):
    reaction = Reaction.STORAGE_FULL


class InvalidIndexError(CommandError):
    reaction = Reaction.INVALID_INDEX


class BusyError(CommandError):
    reaction = Reaction.BUSY


class NetworkError(CommandError):
    reaction = Reaction.NETWORK


class NoSimError(CommandError):
    reaction = Reaction.NO_SIM


class SecurityError(CommandError):
    reaction = Reaction.SECURITY


class UnknownModemError(CommandError):
    reaction = Reaction.UNKNOWN


class RejectedError(CommandError):
    reaction = Reaction.REJECTED


_ERROR_CLASS: dict[Reaction, type[CommandError]] = {
    Reaction.STORAGE_FULL: StorageFullError,
    Reaction.INVALID_INDEX: InvalidIndexError,
    Reaction.BUSY: BusyError,
    Reaction.NETWORK: NetworkError,
    Reaction.NO_SIM: NoSimError,
    Reaction.SECURITY: SecurityError,
    Reaction.UNKNOWN: UnknownModemError,
    Reaction.REJECTED: RejectedError,
}


def command_error(command: str, source: ErrorSource, code: int | None, final: str) -> CommandError:
    """The typed exception for an error result, chosen by the table."""
    return _ERROR_CLASS[classify(source, code)](command, source, code, final)


class CommandTimeout(ModemError):
    """No final result (or no `> ` prompt) within the timeout: the modem is hung."""

    reaction = Reaction.HUNG

    def __init__(self, command: str, timeout: float, waiting_for: str = "final result") -> None:
        super().__init__(f"no {waiting_for} for {command!r} within {timeout:g} s")
        self.command = command
        self.timeout = timeout
        # The command's own lines that did arrive: a Wavecom answers AT+CPIN? with
        # `+CPIN: READY` and never a final OK, so the caller may take the line instead.
        self.lines: tuple[str, ...] = ()


class ModemHung(ModemError):
    """The modem is marked hung (an earlier command timed out) and must be reset first."""

    reaction = Reaction.HUNG


class ModemClosed(ModemError):
    """The port is closed or was lost."""

    reaction = Reaction.HUNG


class StartupError(ModemError):
    """The start-up sequence could not bring the modem into service."""

    def __init__(self, step: str, reason: str, reaction: Reaction) -> None:
        super().__init__(f"start-up failed at {step}: {reason}")
        self.step = step
        self.reaction = reaction

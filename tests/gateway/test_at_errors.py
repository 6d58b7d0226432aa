"""Every row of the at-modems.md error table maps to its reaction and exception type."""

from __future__ import annotations

import pytest

from gateway.at import errors
from gateway.at.errors import ErrorSource, Reaction, classify, command_error
from gateway.at.protocol import parse_final

CMS, CME = ErrorSource.CMS, ErrorSource.CME

TABLE = [
    (CMS, 322, Reaction.STORAGE_FULL, errors.StorageFullError),
    (CMS, 321, Reaction.INVALID_INDEX, errors.InvalidIndexError),
    (CMS, 516, Reaction.INVALID_INDEX, errors.InvalidIndexError),
    (CMS, 512, Reaction.BUSY, errors.BusyError),
    (CMS, 535, Reaction.BUSY, errors.BusyError),
    (CME, 515, Reaction.BUSY, errors.BusyError),
    (CME, 14, Reaction.BUSY, errors.BusyError),
    *[(CMS, c, Reaction.NETWORK, errors.NetworkError) for c in (38, 41, 42, 47, 111, 331, 332)],
    *[(CMS, c, Reaction.NO_SIM, errors.NoSimError) for c in (313, 314, 315)],
    *[(CMS, c, Reaction.SECURITY, errors.SecurityError) for c in (302, 311, 312, 316, 317, 318)],
    (CMS, 500, Reaction.UNKNOWN, errors.UnknownModemError),
]


@pytest.mark.parametrize(("source", "code", "reaction", "kind"), TABLE)
def test_table_row(
    source: ErrorSource, code: int, reaction: Reaction, kind: type[errors.CommandError]
) -> None:
    line = f"{source.value}: {code}"
    final = parse_final(line)
    assert final is not None and not final.ok
    assert (final.source, final.code) == (source, code)
    assert classify(source, code) is reaction
    error = command_error("AT+CMGS=23", source, code, line)
    assert type(error) is kind
    assert (error.code, error.reaction, error.command) == (code, reaction, "AT+CMGS=23")


def test_codes_outside_the_table_are_rejected_not_retried() -> None:
    assert classify(CMS, 304) is Reaction.REJECTED  # invalid PDU mode parameter
    assert classify(CME, 322) is Reaction.REJECTED  # 322 means full only as a CMS error
    assert not Reaction.REJECTED.retryable


def test_uncoded_errors_are_unknown() -> None:
    assert classify(ErrorSource.PLAIN, None) is Reaction.UNKNOWN
    final = parse_final("+CME ERROR: SIM busy")
    assert final is not None and final.code is None
    assert classify(CME, final.code) is Reaction.UNKNOWN


def test_timeout_means_hung() -> None:
    assert errors.CommandTimeout("AT", 0.2).reaction is Reaction.HUNG


def test_reaction_policies() -> None:
    assert {r for r in Reaction if r.modem_out_of_service} == {Reaction.NO_SIM, Reaction.SECURITY}
    assert {r for r in Reaction if r.alert} == {Reaction.SECURITY}

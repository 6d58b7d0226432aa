"""Arbitrary input either parses or fails with the module's own error."""

from __future__ import annotations

import io
import secrets

from hypothesis import given, settings
from hypothesis import strategies as st

from operator_data.crypto import MasterKey, SealError, open_sealed, seal
from operator_data.registry import COLUMNS, ImportIssue, validate_csv
from operator_data.store.types import new_ulid

MASTER = MasterKey(secrets.token_bytes(32))


@settings(max_examples=150)
@given(st.binary(max_size=80), st.text(max_size=12))
def test_open_sealed_accepts_any_bytes_or_raises_seal_error(blob: bytes, aad: str) -> None:
    try:
        open_sealed(MASTER, blob, aad)
    except SealError:
        pass
    else:  # pragma: no cover - forging a GCM tag is not expected
        raise AssertionError("random bytes opened")


@settings(max_examples=50)
@given(st.binary(max_size=48), st.text(max_size=11))
def test_seal_round_trip_and_tamper(plain: bytes, aad: str) -> None:
    sealed = seal(MASTER, plain, aad)
    assert open_sealed(MASTER, sealed, aad) == plain
    flipped = bytes([sealed[0]]) + bytes([sealed[1] ^ 1]) + sealed[2:]
    try:
        open_sealed(MASTER, flipped, aad)
    except SealError:
        return
    raise AssertionError("tampered nonce still opened")


_cell = st.text(alphabet=st.characters(codec="utf-8"), max_size=14)


@settings(max_examples=100)
@given(st.lists(st.lists(_cell, min_size=0, max_size=len(COLUMNS) + 2), max_size=5), st.booleans())
def test_validate_csv_reports_issues_never_crashes(rows: list[list[str]], header: bool) -> None:
    out = io.StringIO()
    import csv

    writer = csv.writer(out)
    if header:
        writer.writerow(COLUMNS)
    writer.writerows(rows)
    issues = validate_csv(io.StringIO(out.getvalue()))
    assert all(isinstance(i, ImportIssue) and i.line >= 1 for i in issues)


@settings(max_examples=100)
@given(st.text(max_size=300))
def test_validate_csv_any_text(text: str) -> None:
    for issue in validate_csv(io.StringIO(text)):
        assert issue.line >= 1 and isinstance(issue.reason, str)


def test_ulids_sort_by_time_and_are_unique() -> None:
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [new_ulid(t0 + timedelta(milliseconds=i)) for i in range(200)]
    assert ids == sorted(ids) and len(set(ids)) == 200 and all(len(i) == 26 for i in ids)


def test_unreadable_csv_is_an_issue_not_a_crash() -> None:
    header = ",".join(COLUMNS) + "\n"
    huge = header + "x" * 200_000 + "\n"
    issues = validate_csv(io.StringIO(huge))
    assert [i.line for i in issues if "not readable" in i.reason] == [2]
    assert validate_csv(io.StringIO("")) != []  # no header at all

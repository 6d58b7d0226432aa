"""The meter-side token rules, with tokens made by the real STS codec."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from firmware_protocol import sts
from meter_sim.meter.sts_decoder import REMEMBERED_TIDS, StsDecoder, TokenOutcome

KEY = 0xE653341F9D5BF36F
BASE = sts.BaseDate.Y2014
T0 = datetime(2026, 11, 1, 8, 0)


def credit(kwh: str, minutes: int = 0, key: int = KEY, base: sts.BaseDate = BASE) -> str:
    fields = sts.credit(0, 3, T0 + timedelta(minutes=minutes), Decimal(kwh), base)
    return sts.encode(fields, key)


def meter() -> StsDecoder:
    return StsDecoder(decoder_key=KEY, base_date=BASE)


def test_a_valid_token_adds_its_rounded_amount() -> None:
    m = meter()
    result = m.accept(credit("2000"))
    assert result.outcome is TokenOutcome.ACCEPTED
    assert result.kwh_added == Decimal("2000.4")
    assert m.credit_kwh == result.credit_after == Decimal("2000.4")


def test_the_same_token_twice_is_used() -> None:
    m = meter()
    token = credit("10")
    m.accept(token)
    again = m.accept(token)
    assert again.outcome is TokenOutcome.USED
    assert again.kwh_added == 0 and m.credit_kwh == Decimal(10)


def test_a_token_for_another_meter_fails_the_crc() -> None:
    m = meter()
    assert m.accept(credit("10", key=KEY ^ 0xFF)).outcome is TokenOutcome.INVALID_CRC
    assert m.credit_kwh == 0


def test_a_token_made_under_another_key_revision_fails_the_crc() -> None:
    data = {"key_type": 2, "supply_group_code": "123456", "tariff_index": "01",
            "iin": "600727", "drn": "14123456789"}  # fmt: skip
    old_key = sts.derive_decoder_key(0xABABABABABABABAB, sts.KeyData(key_revision_number=1, **data))
    new_key = sts.derive_decoder_key(0xABABABABABABABAB, sts.KeyData(key_revision_number=2, **data))
    m = StsDecoder(decoder_key=new_key, base_date=BASE)
    assert m.accept(credit("10", key=old_key)).outcome is TokenOutcome.INVALID_CRC
    assert m.accept(credit("10", key=new_key)).outcome is TokenOutcome.ACCEPTED


def test_tokens_older_than_the_remembered_window_are_old() -> None:
    m = meter()
    for minute in range(1, REMEMBERED_TIDS + 1):
        assert m.accept(credit("1", minutes=minute)).outcome is TokenOutcome.ACCEPTED
    assert m.accept(credit("1", minutes=0)).outcome is TokenOutcome.OLD
    # Newer than the oldest remembered but never seen: still fine, out-of-order delivery.
    assert m.accept(credit("1", minutes=REMEMBERED_TIDS + 5)).outcome is TokenOutcome.ACCEPTED
    assert len(m.tids) == REMEMBERED_TIDS


def test_overflow_is_refused_and_changes_nothing() -> None:
    m = meter()
    m.credit_kwh = Decimal("99990")
    result = m.accept(credit("100"))
    assert result.outcome is TokenOutcome.OVERFLOW
    assert m.credit_kwh == Decimal("99990") and m.tids == []


def test_clear_tamper_management_token() -> None:
    m = meter()
    m.tamper = True
    token = sts.encode(sts.management(5, 1, T0, 0, BASE), KEY)
    result = m.accept(token)
    assert result.outcome is TokenOutcome.ACCEPTED and not m.tamper and result.kwh_added == 0


def test_garbage_is_unsupported_not_an_exception() -> None:
    assert meter().accept("not a token").outcome is TokenOutcome.UNSUPPORTED


@given(order=st.permutations(list(range(20))))
def test_any_delivery_order_credits_each_token_exactly_once(order: list[int]) -> None:
    m = meter()
    tokens = [credit("1.5", minutes=i) for i in range(20)]
    for index in order + order[:5]:
        m.accept(tokens[index])
    assert m.credit_kwh == Decimal("1.5") * 20

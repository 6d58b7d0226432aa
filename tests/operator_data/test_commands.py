"""Customer commands: what customers really type, typos, and arbitrary bytes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from operator_data.commands import (
    Balance,
    Buy,
    CommandError,
    Help,
    Problem,
    Start,
    Status,
    Stop,
    mask_secrets,
    parse,
)
from operator_data.commands.replies import (
    LONGEST_VALUES,
    SMS_LIMIT,
    Lang,
    Reply,
    fields_of,
    gsm7_length,
    render,
    reply_for_error,
)


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("BELI 100000 1234", Buy(100_000, None, "1234")),
        ("beli 100.000 14123456789 123456", Buy(100_000, "14123456789", "123456")),
        ("BELI#100rb#14123456789#1234", Buy(100_000, "14123456789", "1234")),
        ("  Beli  50K   9876 ", Buy(50_000, None, "9876")),
        ("BELI 1jt 1234", Buy(1_000_000, None, "1234")),
        ("BELI Rp20.000 1234", Buy(20_000, None, "1234")),
        ("BUY 200ribu 1234", Buy(200_000, None, "1234")),
        ("SALDO", Balance(None)),
        ("cek 14123456789", Balance("14123456789")),
        ("STATUS 14123456789", Status("14123456789")),
        ("bantuan", Help()),
        ("?", Help()),
        ("STOP", Stop()),
        ("mulai", Start()),
    ],
)
def test_commands_as_customers_type_them(text: str, command: object) -> None:
    assert parse(text) == command


@pytest.mark.parametrize(
    ("text", "problem", "hint"),
    [
        ("", Problem.EMPTY, None),
        ("   #  ", Problem.EMPTY, None),
        ("BELII 100rb 1234", Problem.UNKNOWN, "BELI"),
        ("SALDOO", Problem.UNKNOWN, "SALDO"),
        ("halo pak", Problem.UNKNOWN, None),
        ("BELI", Problem.MISSING_AMOUNT, None),
        ("BELI seratus 1234", Problem.BAD_AMOUNT, None),
        ("BELI 0 1234", Problem.BAD_AMOUNT, None),
        ("BELI 100rb", Problem.MISSING_PIN, None),
        ("BELI 100rb 14123456789", Problem.MISSING_PIN, None),
        ("BELI 100rb 12", Problem.BAD_PIN, None),
        ("BELI 100rb 1412345678 1234", Problem.BAD_METER, None),
        ("BELI 100rb 14123456789 1234 5678", Problem.TOO_MANY_WORDS, None),
        ("SALDO 123", Problem.BAD_METER, None),
        ("STOP sekarang", Problem.TOO_MANY_WORDS, None),
        ("BELI " + "1" * 600, Problem.TOO_LONG, None),
    ],
)
def test_malformed_commands_say_what_is_wrong(
    text: str, problem: Problem, hint: str | None
) -> None:
    with pytest.raises(CommandError) as caught:
        parse(text)
    assert caught.value.problem is problem
    assert caught.value.hint == hint


@given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_any_input_parses_or_raises_command_error(raw: bytes | str) -> None:
    with contextlib.suppress(CommandError):
        parse(raw)


@given(
    amount=st.integers(1, 100_000_000),
    meter=st.one_of(st.none(), st.from_regex(r"[0-9]{11}", fullmatch=True)),
    pin=st.from_regex(r"[0-9]{4,6}", fullmatch=True),
    sep=st.sampled_from([" ", "#", "  ", ","]),
)
def test_buy_round_trips_through_its_written_form(
    amount: int, meter: str | None, pin: str, sep: str
) -> None:
    words = ["BELI", str(amount), *([meter] if meter else []), pin]
    assert parse(sep.join(words)) == Buy(amount, meter, pin)


def test_the_pin_is_masked_for_logs_and_reprs() -> None:
    assert mask_secrets("BELI 100rb 14123456789 1234") == "BELI 100rb 14123456789 ****"
    assert mask_secrets("beli#50k#987654") == "beli#50k#******"
    assert mask_secrets("SALDO 14123456789") == "SALDO 14123456789"
    assert "1234" not in repr(parse("BELI 100rb 1234"))


@pytest.mark.parametrize("lang", list(Lang))
@pytest.mark.parametrize("reply", list(Reply))
def test_every_reply_fits_one_gsm7_sms_with_its_longest_values(reply: Reply, lang: Lang) -> None:
    values = {name: LONGEST_VALUES[name] for name in fields_of(reply, lang)}
    text = render(reply, lang, **values)
    length = gsm7_length(text)
    assert length is not None and length <= SMS_LIMIT


def test_replies_exist_in_both_languages_with_the_same_fields() -> None:
    for reply in Reply:
        assert fields_of(reply, Lang.ID) == fields_of(reply, Lang.EN)


@given(raw=st.text(max_size=100))
def test_every_bad_command_gets_an_answer(raw: str) -> None:
    try:
        parse(raw)
    except CommandError as error:
        answer = reply_for_error(error, Lang.ID, LONGEST_VALUES["denominations"])
        assert 0 < len(answer) <= SMS_LIMIT

"""The line codec: lines, the prompt, CR/LF variants, echo, junk, chunking."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.at.reader import Discarded, Line, LineEnd, LineReader, Prompt, Token


def tokens(data: bytes) -> list[Token]:
    return LineReader().feed(data)


def test_crlf_framed_response() -> None:
    assert tokens(b"\r\n+CSQ: 21,99\r\n\r\nOK\r\n") == [Line("+CSQ: 21,99"), Line("OK")]


def test_line_end_variants_are_equivalent() -> None:
    for sep in (b"\r\n", b"\n", b"\r", b"\n\r", b"\r\r\n"):
        assert tokens(b"OK" + sep + b"ERROR" + sep) == [Line("OK"), Line("ERROR")]


def test_echo_then_response() -> None:
    assert tokens(b"AT+CMGF=0\r\r\nOK\r\n") == [Line("AT+CMGF=0"), Line("OK")]


def test_prompt_with_and_without_space() -> None:
    assert tokens(b"AT+CMGS=23\r\r\n> ") == [Line("AT+CMGS=23"), Prompt()]
    assert tokens(b"\r\n>\r\n") == [Prompt()]


def test_pdu_body_ends_with_ctrl_z_or_esc() -> None:
    assert tokens(b"0011AB\x1a") == [Line("0011AB", LineEnd.CTRL_Z)]
    assert tokens(b"0011\x1b") == [Line("0011", LineEnd.ESC)]


def test_junk_in_front_is_kept_out_of_the_next_line() -> None:
    # Power-up noise: NULs vanish, other control bytes are dropped, high bytes stay visible.
    assert tokens(b"\x00\x00\x03\r\nOK\r\n") == [Line("OK")]
    assert tokens(b"\xff\xfe\r\nOK\r\n") == [Line("\xff\xfe"), Line("OK")]


def test_over_long_line_is_discarded_and_reading_resynchronises() -> None:
    reader = LineReader(max_line=8)
    assert reader.feed(b"0123456789ABCDEF\r\nOK\r\n") == [Discarded(16), Line("OK")]


@settings(max_examples=150)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_produce_tokens(data: bytes) -> None:
    for token in LineReader(max_line=64).feed(data):
        assert isinstance(token, Line | Prompt | Discarded)


@settings(max_examples=150)
@given(st.binary(max_size=200), st.lists(st.integers(min_value=1, max_value=20), max_size=40))
def test_chunking_does_not_change_output(data: bytes, cuts: list[int]) -> None:
    whole = LineReader(max_line=64).feed(data)
    reader = LineReader(max_line=64)
    chunked: list[Token] = []
    position = 0
    for size in cuts:
        chunked += reader.feed(data[position : position + size])
        position += size
    chunked += reader.feed(data[position:])
    assert chunked == whole


@settings(max_examples=100)
@given(st.lists(st.from_regex(r"[A-Z+:0-9,\" ]{1,30}", fullmatch=True), max_size=10))
def test_framed_lines_round_trip(lines: list[str]) -> None:
    data = b"".join(b"\r\n" + line.encode() + b"\r\n" for line in lines)
    expected = [Line(line.strip()) for line in lines if line.strip() and line.strip() != ">"]
    got = [t for t in tokens(data) if isinstance(t, Line)]
    assert got == expected

"""Properties of the dialect codec over arbitrary input."""

from __future__ import annotations

import contextlib
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from p2apst_adapter import dialect
from p2apst_adapter.dialect import (
    BIT48_LAYOUTS,
    Deframer,
    Framing,
    IsoError,
    IsoMessage,
    Layout,
    Mti,
    SubField,
    SubKind,
)
from tests.p2apst_adapter import samples


@given(data=st.binary(max_size=400))
def test_decoding_arbitrary_bytes_returns_or_raises_iso_error(data: bytes) -> None:
    try:
        message = dialect.decode(data)
    except IsoError:
        return
    assert isinstance(message, IsoMessage)


@given(
    position=st.integers(0, len(samples.PURCHASE_RESPONSE) - 1),
    byte=st.integers(0, 255),
)
def test_corrupted_samples_decode_or_raise_iso_error(position: int, byte: int) -> None:
    data = bytearray(samples.PURCHASE_RESPONSE.encode())
    data[position] = byte
    with contextlib.suppress(IsoError):
        dialect.message_document(dialect.decode(bytes(data)))


#: Found by fuzzing (a sign-on with its bitmap mutated): the bitmap names field 172, past
#: the dialect's fields, and iso8583 let a bare KeyError out, which once ended the
#: client's link supervisor for good.
BITMAP_BEYOND_THE_FIELDS = bytes.fromhex(
    "32383030383030303030303030303030303030304630303030303030303030303030303030303030"
    "303030303030313230323631323033303133363231303031"
)


def test_a_bitmap_naming_a_field_the_dialect_lacks_is_an_iso_error() -> None:
    try:
        dialect.decode(BITMAP_BEYOND_THE_FIELDS)
    except IsoError as error:
        assert "field 172" in str(error)
    else:
        raise AssertionError("decoded a message whose bitmap names field 172")


@settings(max_examples=400)
@given(
    edits=st.lists(
        st.tuples(st.integers(0, 400), st.integers(0, 255), st.sampled_from("sid")),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_samples_decode_or_raise_iso_error(edits: list[tuple[int, int, str]]) -> None:
    """Bytes, insertions and deletions anywhere in a real answer, the bitmaps included."""
    data = bytearray(samples.PURCHASE_RESPONSE.encode())
    for position, byte, kind in edits:
        at = position % (len(data) + 1)
        if kind == "i":
            data.insert(at, byte)
        elif data and at < len(data):
            if kind == "s":
                data[at] = byte
            else:
                del data[at]
    with contextlib.suppress(IsoError):
        dialect.message_document(dialect.decode(bytes(data)))


@given(data=st.binary(max_size=300), framing=st.sampled_from(list(Framing)))
def test_deframer_on_arbitrary_bytes(data: bytes, framing: Framing) -> None:
    try:
        for message in Deframer(framing).feed(data):
            assert message
    except IsoError:
        pass


@given(mti=st.sampled_from(list(BIT48_LAYOUTS)), text=st.text(max_size=300))
def test_bit48_of_arbitrary_text_returns_or_raises_iso_error(mti: Mti, text: str) -> None:
    with contextlib.suppress(IsoError):
        dialect.decode_bit48(mti, text)


def _value(sub: SubField) -> st.SearchStrategy[object]:
    match sub.kind:
        case SubKind.DIGITS:
            return st.text("0123456789", min_size=sub.width, max_size=sub.width)
        case SubKind.NUMBER:
            return st.integers(0, 10**sub.width - 1)
        case SubKind.TEXT:
            alphabet = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
            # trailing spaces are padding, so a value never ends in one
            return st.text(alphabet, max_size=sub.width).map(str.rstrip)
        case SubKind.MONEY:
            return st.builds(
                lambda units, minor: Decimal(units).scaleb(-minor),
                st.integers(0, 10 ** (sub.width - 1) - 1),
                st.integers(sub.minor, sub.minor),
            )


def _layout_values(layout: Layout) -> st.SearchStrategy[dict[str, object]]:
    return st.fixed_dictionaries({sub.name: _value(sub) for sub in layout.fields})


@settings(max_examples=60)
@given(data=st.data(), mti=st.sampled_from(list(BIT48_LAYOUTS)))
def test_round_trip_for_every_message_type(data: st.DataObject, mti: Mti) -> None:
    layout = BIT48_LAYOUTS[mti][0]
    values = data.draw(_layout_values(layout))
    amount = data.draw(st.integers(0, 10**12 - 1))
    message = IsoMessage(
        mti,
        {
            2: "99502",
            4: dialect.AMOUNT.encode({"currency": "360", "amount": Decimal(amount)}),
            11: data.draw(st.text("0123456789", min_size=12, max_size=12)),
            12: "20240315103000",
            32: "4510017",
            33: "3250001",
            41: "TERM000000000001",
            48: layout.encode(values),
        },
    )
    decoded = dialect.decode(dialect.encode(message))
    assert decoded == message
    assert dialect.bit48_layout(mti, decoded.fields[48]) is layout
    assert layout.decode(decoded.fields[48]) == values


@settings(max_examples=40)
@given(
    fixed=_layout_values(dialect.PRIVATE_DATA_2).filter(lambda v: True),
    unsold=st.lists(st.integers(0, 10**10 - 1).map(Decimal), max_size=9),
)
def test_bit62_round_trip_with_repeats(fixed: dict[str, object], unsold: list[Decimal]) -> None:
    values = {**fixed, "total_repeat": len(unsold), "unsold_amounts": unsold}
    assert dialect.PRIVATE_DATA_2.decode(dialect.PRIVATE_DATA_2.encode(values)) == values

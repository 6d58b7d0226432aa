import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.msisdn import MsisdnError, is_short_code, normalise


@pytest.mark.parametrize(
    "text",
    ["081234567890", "6281234567890", "+6281234567890", "+62 812-3456-7890", "006281234567890"],
)
def test_every_written_form_normalises_to_one(text: str) -> None:
    assert normalise(text) == "+6281234567890"


@pytest.mark.parametrize("text", ["", "12345", "+6221234567", "0812", "+62812345678901234", "abc"])
def test_non_mobile_numbers_are_refused(text: str) -> None:
    with pytest.raises(MsisdnError):
        normalise(text)


def test_foreign_numbers_pass_only_when_allowed() -> None:
    assert normalise("+4915112345678", mobile_only=False) == "+4915112345678"
    with pytest.raises(MsisdnError):
        normalise("+4915112345678")


@given(st.text(max_size=30))
def test_normalise_returns_a_canonical_number_or_raises(text: str) -> None:
    try:
        result = normalise(text)
    except MsisdnError:
        return
    assert normalise(result) == result


@pytest.mark.parametrize(
    ("code", "ok"), [("81234", True), ("8123", False), ("91234", False), ("112", False)]
)
def test_short_codes(code: str, ok: bool) -> None:
    assert is_short_code(code) is ok

"""Parser and start-up fixes that real modems' recorded answers asked for (issue 15): each
case here failed before the fix; the recorded dialogues are in tests/conformance/."""

from __future__ import annotations

import pytest

from gateway.at.responses import (
    ResponseError,
    parse_cpms_query,
    parse_creg,
    parse_index_urc,
    parse_pdu_listing,
)


@pytest.mark.parametrize(
    "call",
    [
        lambda: parse_creg("0,²"),
        lambda: parse_index_urc('"SM",²', "+CMTI"),
        lambda: parse_pdu_listing(("+CMGL: ²,0,,5", "00"), "+CMGL:"),
    ],
)
def test_non_ascii_digits_are_a_response_error_not_a_value_error(call: object) -> None:
    with pytest.raises(ResponseError):
        call()  # type: ignore[operator]


def test_cmgr_without_a_stat_reads_as_unread() -> None:
    [listed] = parse_pdu_listing(("+CMGR: ,,27", "0297F1"), "+CMGR:")
    assert (listed.stat, listed.length, listed.pdu) == (0, 27, "0297F1")


def test_cmgl_without_a_stat_is_still_refused() -> None:
    # A listing's stat tells stored outgoing copies from received ones: never guessed.
    with pytest.raises(ResponseError):
        parse_pdu_listing(("+CMGL: 1,,,27", "0297F1"), "+CMGL:")


def test_empty_cpms_query_is_an_unknown_storage_not_an_error() -> None:
    status = parse_cpms_query(",,,,,,,,")
    assert (status.used, status.total) == (0, 0)

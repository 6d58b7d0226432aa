"""Properties of the helpdesk's small parsers: the pagination cursor and the search box."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from operator_data.api.present import mask_msisdn
from operator_data.api.queries import BadCursor, decode_cursor, encode_cursor
from operator_data.api.routers.pages import classify

ULIDS = st.text(alphabet="0123456789ABCDEFGHJKMNPQRSTVWXYZ", min_size=26, max_size=26)


@settings(max_examples=150)
@given(st.datetimes(timezones=st.just(UTC)), ULIDS)
def test_cursor_round_trip(when: datetime, row_id: str) -> None:
    assert decode_cursor(encode_cursor(when, row_id)) == (when, row_id)


@settings(max_examples=300)
@given(
    st.one_of(
        st.text(max_size=80),
        st.binary(max_size=80).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")),
    )
)
def test_any_cursor_decodes_or_raises_bad_cursor(cursor: str) -> None:
    try:
        when, row_id = decode_cursor(cursor)
    except BadCursor:
        return
    assert when.tzinfo is not None and 0 < len(row_id) <= 26


@settings(max_examples=300)
@given(st.text(max_size=40))
def test_search_box_never_raises(query: str) -> None:
    found = classify(query)
    assert found is None or found[0] in {"meter", "customer", "transaction", "msisdn"}


@settings(max_examples=100)
@given(st.from_regex(r"\+628[0-9]{8,11}", fullmatch=True))
def test_masked_msisdn_keeps_prefix_and_last_three_only(number: str) -> None:
    masked = mask_msisdn(number)
    assert masked is not None and len(masked) == len(number)
    assert masked[:6] == number[:6] and masked[-3:] == number[-3:]
    assert set(masked[6:-3]) == {"*"}

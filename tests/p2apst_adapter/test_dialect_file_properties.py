"""Properties of the lenient layouts, open-ended repeats and the dialect-file parser."""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from p2apst_adapter import dialect
from p2apst_adapter.dialect import DialectFileError, IsoError, parse_dialect

PRIVATE = dialect.PRIVATE_DATA_2
STRICT_PRIVATE = dataclasses.replace(PRIVATE, lenient=False)
DEFAULT_DOCUMENT: dict[str, Any] = tomllib.loads(dialect.default_dialect_text())
_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x2FF), max_size=120)


@given(text=_text)
def test_a_lenient_layout_never_raises_and_agrees_with_strict_when_clean(text: str) -> None:
    values = PRIVATE.decode(text)
    problem = PRIVATE.problem(text)
    assert problem is None or isinstance(problem, IsoError)
    if problem is None:
        assert STRICT_PRIVATE.decode(text) == values
    else:
        try:
            STRICT_PRIVATE.decode(text)
        except IsoError as error:
            assert error.field is not None and error.field.startswith("62")
        else:  # pragma: no cover - the property is that this branch never runs
            raise AssertionError("strict accepted what lenient called a problem")


@given(
    head=st.tuples(
        st.text("0123456789", min_size=2, max_size=2),
        st.text("0123456789", min_size=5, max_size=5),
        st.text("0123456789- ", min_size=15, max_size=15).map(str.rstrip),
        st.integers(0, 99999),
        st.integers(0, 9),
    ),
    amounts=st.lists(st.integers(0, 10**10 - 1).map(Decimal), max_size=6),
)
def test_open_ended_repeats_round_trip_whatever_total_repeat_says(
    head: tuple[str, str, str, int, int], amounts: list[Decimal]
) -> None:
    values = dict(zip(PRIVATE.names(), head, strict=True), unsold_amounts=amounts)
    text = PRIVATE.encode(values)
    assert PRIVATE.problem(text) is None
    assert PRIVATE.decode(text) == values


@given(text=_text)
def test_strict_money_layouts_return_or_raise_iso_error(text: str) -> None:
    for layout in (dialect.PURCHASE_RESPONSE, dialect.AMOUNT, dialect.TOKEN_REPORT):
        try:
            values = layout.decode(text)
        except IsoError as error:
            assert error.field is not None
        else:
            assert len(text) == layout.width and set(values) == set(layout.names())


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 2000) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(node: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


PATHS = _paths(DEFAULT_DOCUMENT)[1:]


@settings(max_examples=300)
@given(path=st.sampled_from(PATHS), value=_json, delete=st.booleans())
def test_a_mangled_file_loads_or_is_refused_with_dialect_file_error(
    path: tuple[object, ...], value: object, delete: bool
) -> None:
    document = copy.deepcopy(DEFAULT_DOCUMENT)
    parent: Any = document
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    try:
        loaded = parse_dialect(document, "mangled.toml")
    except DialectFileError as error:
        assert error.source == "mangled.toml" and error.problem
        return
    # Whatever loads still reads money and tokens strictly.
    response = loaded.layout("purchase response")
    assert not response.lenient
    kinds = {sub.name: sub.kind for sub in response.fields}
    assert kinds["token"] is dialect.SubKind.DIGITS and kinds["kwh"] is dialect.SubKind.MONEY

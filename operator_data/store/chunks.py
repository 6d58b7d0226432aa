"""Long key lists cut for `IN (...)`: each backend bounds the parameters of a statement
(SQLite 32,766, PostgreSQL 65,535), and a batch of a few thousand keys must stay under."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

#: Keys per `IN (...)` list: well under every backend's bound-parameter limit.
IN_CHUNK = 500


def chunks(values: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """`values` in consecutive slices of at most `size`."""
    for start in range(0, len(values), size):
        yield values[start : start + size]

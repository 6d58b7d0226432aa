"""The one error the ISO 8583 dialect raises."""

from __future__ import annotations


class IsoError(ValueError):
    """A message that cannot be encoded or decoded; says which field and byte offset failed.

    `field` is the ISO bit number as text ("48", "t" for the MTI, "p" for the bitmap) or a
    sub-field name ("48.meter_number"); `offset` is the byte offset in the message (or in
    the sub-field's parent field) where the problem starts, when it is known.
    """

    def __init__(self, message: str, *, field: str | None = None, offset: int | None = None):
        where = []
        if field is not None:
            where.append(f"field {field}")
        if offset is not None:
            where.append(f"offset {offset}")
        super().__init__(f"{message} ({', '.join(where)})" if where else message)
        self.reason = message
        self.field = field
        self.offset = offset

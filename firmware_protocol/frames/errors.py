"""The one error the frame codec raises, with a reason a program can act on."""

from __future__ import annotations

from enum import Enum


class Reason(Enum):
    """Why a frame (or a message, or a piece of codec state) was refused."""

    TRUNCATED = "truncated"  # fewer bytes than the header, the field or the tag needs
    TOO_LONG = "too long"  # more than one SMS can carry
    BAD_VERSION = "bad version"
    BAD_FLAGS = "bad flags"  # reserved header bits set
    UNKNOWN_TYPE = "unknown type"  # no such message type, or not one for this direction
    BAD_METER = "bad meter number"
    BAD_SEGMENT = "bad segment"  # segment index not below the segment count
    WRONG_DIRECTION = "wrong direction"
    WRONG_METER = "wrong meter"
    UNKNOWN_KEY = "unknown key id"
    BAD_KEY = "bad key"  # a key that is not 16 bytes
    BAD_TAG = "bad tag"  # authentication failed: wrong key, wrong meter or altered bytes
    REPLAYED = "replayed"  # counter already accepted
    TOO_OLD = "too old"  # counter below the replay window
    BAD_LENGTH = "bad length"  # payload longer or shorter than its message type
    BAD_VALUE = "bad value"  # a field outside its range, or of the wrong type
    BAD_TEXT = "bad text form"
    SEGMENT_MISMATCH = "segment mismatch"  # segments of one message disagree
    TOO_LARGE = "too large"  # needs more segments than a frame can number
    COUNTER_EXHAUSTED = "counter exhausted"  # no invocation counter left under this key


class FrameError(ValueError):
    """A frame, message or codec state that cannot be used.

    `offset` is the byte offset of the offending field where there is one: into the frame
    for header, tag and replay errors; into the (reassembled) message payload for payload
    errors (`field` then names the payload field); into the decoded bytes for state errors.
    """

    def __init__(
        self, reason: Reason, detail: str, *, offset: int | None = None, field: str | None = None
    ) -> None:
        self.reason = reason
        self.detail = detail
        self.offset = offset
        self.field = field
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{reason.value}{where}: {detail}")

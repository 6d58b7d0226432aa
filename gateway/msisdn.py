"""Indonesian MSISDNs in one form: E.164 with a leading '+' (e.g. +6281234567890).

Customers write numbers as 0812..., 62812..., +62 812-..., and modems report them in
international or national format; every store key and comparison uses `normalise`.
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s\-().]")
# After the country code: a mobile number is 8 followed by 8–11 more digits (9–12 in all).
_INDONESIAN_MOBILE = re.compile(r"\+628[0-9]{8,11}")
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


class MsisdnError(ValueError):
    """The text is not a phone number this system accepts."""


def normalise(text: str, *, mobile_only: bool = True) -> str:
    """`+62...` form of an Indonesian mobile number (or, with mobile_only=False, any E.164)."""
    compact = _SEPARATORS.sub("", text)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    elif compact.startswith("0"):
        compact = "+62" + compact[1:]
    elif compact.startswith("62"):
        compact = "+" + compact
    if mobile_only:
        if not _INDONESIAN_MOBILE.fullmatch(compact):
            raise MsisdnError(
                f"{text!r} is not an Indonesian mobile number (+62 8xx, 9-12 digits after 62)"
            )
    elif not _E164.fullmatch(compact):
        raise MsisdnError(f"{text!r} is not an international phone number")
    return compact


def is_short_code(text: str) -> bool:
    """A non-content SMS access code of a legal entity: 5 digits starting with 8 (8ABCD)."""
    return re.fullmatch(r"8[0-9]{4}", text) is not None

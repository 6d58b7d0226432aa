"""What a prepaid meter does with a 20-digit token (IEC 62055-41 meter-side rules).

The meter decrypts with its own decoder key; a CRC failure means a wrong key, a token for
another meter, a different key revision or base date, or a typo. A TID the meter has already
accepted is "used"; a TID older than the oldest one it still remembers is "old" — meters keep
a bounded list of recent TIDs, so without this rule an old token could be replayed once it
fell off the list.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from firmware_protocol import sts

#: How many accepted TIDs a meter remembers (real meters keep a few dozen).
REMEMBERED_TIDS = 50
#: The largest credit the register holds; a token that would overflow it is refused.
MAX_CREDIT_KWH = Decimal("99999.9")


class TokenOutcome(StrEnum):
    ACCEPTED = "accepted"
    USED = "used"
    OLD = "old"
    INVALID_CRC = "invalid-crc"
    KEY_EXPIRED = "key-expired"
    OVERFLOW = "overflow"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True, slots=True)
class TokenResult:
    outcome: TokenOutcome
    kwh_added: Decimal
    credit_after: Decimal
    tid: int | None = None
    token_class: int | None = None
    subclass: int | None = None


@dataclass(slots=True)
class StsDecoder:
    """The token-handling part of a meter. Its state is what must survive a restart."""

    decoder_key: int
    base_date: sts.BaseDate
    credit_kwh: Decimal = Decimal(0)
    tids: list[int] = field(default_factory=list)  # sorted ascending, at most REMEMBERED_TIDS
    tamper: bool = False

    def accept(self, token: str) -> TokenResult:
        try:
            decoded = sts.decode(token, self.decoder_key)
        except sts.StsError:
            return self._refuse(TokenOutcome.UNSUPPORTED)
        fields = decoded.fields
        if not decoded.crc_ok:
            return self._refuse(TokenOutcome.INVALID_CRC)
        if fields.tid in self.tids:
            return self._refuse(TokenOutcome.USED, fields)
        if len(self.tids) >= REMEMBERED_TIDS and fields.tid < self.tids[0]:
            return self._refuse(TokenOutcome.OLD, fields)
        added = Decimal(0)
        if fields.token_class is sts.TokenClass.CREDIT:
            if fields.subclass != 0:  # water, gas...: not for an electricity meter
                return self._refuse(TokenOutcome.UNSUPPORTED, fields)
            added = fields.amount_kwh
            if self.credit_kwh + added > MAX_CREDIT_KWH:
                return self._refuse(TokenOutcome.OVERFLOW, fields)
            self.credit_kwh += added
        elif fields.subclass == 5:
            self.tamper = False
        self._remember(fields.tid)
        return TokenResult(
            TokenOutcome.ACCEPTED,
            added,
            self.credit_kwh,
            fields.tid,
            int(fields.token_class),
            fields.subclass,
        )

    def _remember(self, tid: int) -> None:
        bisect.insort(self.tids, tid)
        del self.tids[:-REMEMBERED_TIDS]

    def _refuse(self, outcome: TokenOutcome, fields: sts.TokenFields | None = None) -> TokenResult:
        return TokenResult(
            outcome,
            Decimal(0),
            self.credit_kwh,
            fields.tid if fields else None,
            int(fields.token_class) if fields else None,
            fields.subclass if fields else None,
        )

"""Did every paid purchase produce exactly one receipt and exactly one credit?

Three records are compared: what the customers' phones were told (purchase confirmations
and receipts, by the hub's reference and the token in the receipt), and what the meters
credited (by token and TID). A healthy run has no duplicates and no unexplained losses.

A meter keeps only a digest of each token it took (issue 16: no clear token at rest), so
credits and receipts are matched by `token_digest`; a credit is named in the report by its
token where the meter's process still has it in memory, else by its digest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from firmware_protocol.frames import TokenOutcome
from meter_sim.meter.state_store import TokenRecord, token_digest
from meter_sim.phones.inbox import Notice, NoticeKind
from meter_sim.phones.phone import SimulatedPhone


class CreditingMeter(Protocol):
    """What the ledger needs of a meter (SimulatedMeter has it)."""

    @property
    def meter_number(self) -> str: ...

    @property
    def token_records(self) -> Sequence[TokenRecord]: ...


@dataclass(frozen=True, slots=True)
class CreditLine:
    meter_number: str
    reference: int  # the hub's TOKEN_DELIVERY reference
    digest: str  # token_digest of the token credited
    token: str | None  # the token, if the meter's process took it (not after a restart)
    tid: int | None
    added_kwh: Decimal

    @property
    def label(self) -> str:
        """The token, or its digest where the meter no longer knows the token."""
        return self.token if self.token is not None else f"sha256:{self.digest}"


@dataclass(frozen=True, slots=True)
class LedgerReport:
    purchases_sent: int  # valid BELI commands (repeats not counted)
    confirmed: tuple[str, ...]  # refs the hub confirmed as paid
    receipts: tuple[Notice, ...]
    credits: tuple[CreditLine, ...]
    rejected: tuple[str, ...]  # refs the hub said the meter refused (explained, not lost)
    duplicate_receipts: tuple[str, ...]  # tokens (or refs) receipted more than once
    double_credits: tuple[str, ...]  # tokens a meter credited more than once
    receipts_without_credit: tuple[str, ...]  # receipted tokens no meter credited
    credits_without_receipt: tuple[str, ...]  # credited tokens nobody got a receipt for
    confirmed_without_outcome: tuple[str, ...]  # paid refs with neither receipt nor rejection

    @property
    def ok(self) -> bool:
        return not (
            self.duplicate_receipts
            or self.double_credits
            or self.receipts_without_credit
            or self.credits_without_receipt
            or self.confirmed_without_outcome
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "purchases_sent": self.purchases_sent,
            "confirmed": len(self.confirmed),
            "receipts": len(self.receipts),
            "credits": len(self.credits),
            "rejected": list(self.rejected),
            "duplicate_receipts": list(self.duplicate_receipts),
            "double_credits": list(self.double_credits),
            "receipts_without_credit": list(self.receipts_without_credit),
            "credits_without_receipt": list(self.credits_without_receipt),
            "confirmed_without_outcome": list(self.confirmed_without_outcome),
        }


def check_ledger(
    phones: Iterable[SimulatedPhone], meters: Iterable[CreditingMeter]
) -> LedgerReport:
    phones = list(phones)
    purchases = sum(1 for p in phones for c in p.sent if c.valid_purchase and not c.repeated)
    confirmed: dict[str, None] = {}
    rejected: dict[str, None] = {}
    receipts: list[Notice] = []
    for phone in phones:
        for notice in phone.notices():
            if notice.kind is NoticeKind.PURCHASE_ACCEPTED and notice.ref:
                confirmed.setdefault(notice.ref)
            elif notice.kind is NoticeKind.TOKEN_REJECTED and notice.ref:
                rejected.setdefault(notice.ref)
            elif notice.kind is NoticeKind.RECEIPT:
                receipts.append(notice)
    credits = [
        CreditLine(meter.meter_number, r.reference, r.digest, r.token, r.tid, r.added_kwh)
        for meter in meters
        for r in meter.token_records
        if r.outcome is TokenOutcome.ACCEPTED and r.added_kwh > 0
    ]
    receipt_keys = Counter(n.token or f"ref:{n.ref}" for n in receipts)
    receipted = {token_digest(n.token) for n in receipts if n.token}
    credit_digests = Counter(c.digest for c in credits)
    credit_tids = Counter((c.meter_number, c.tid) for c in credits)
    doubles = {c.label for c in credits if credit_digests[c.digest] > 1}
    doubles |= {c.label for c in credits if credit_tids[(c.meter_number, c.tid)] > 1}
    receipted_refs = {n.ref for n in receipts}
    return LedgerReport(
        purchases_sent=purchases,
        confirmed=tuple(confirmed),
        receipts=tuple(receipts),
        credits=tuple(credits),
        rejected=tuple(rejected),
        duplicate_receipts=tuple(sorted(k for k, n in receipt_keys.items() if n > 1)),
        double_credits=tuple(sorted(doubles)),
        receipts_without_credit=tuple(
            sorted(
                n.token for n in receipts if n.token and token_digest(n.token) not in credit_digests
            )
        ),
        credits_without_receipt=tuple(
            sorted(c.label for c in credits if c.digest not in receipted)
        ),
        confirmed_without_outcome=tuple(
            ref for ref in confirmed if ref not in receipted_refs and ref not in rejected
        ),
    )

"""A complaint a customer opens by SMS (`ADUAN <teks>`): the ticket and the answer are
decided before the hub's reply transaction, and the row is written inside it (hub/
customer.py), so an answered ADUAN always has its complaint and a redelivered SMS (already
processed) opens none. The ticket comes from the complaint's id, chosen here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from operator_data.commands.replies import Lang, Reply, render
from operator_data.complaints import calendar
from operator_data.complaints.store import NewComplaint, ticket_for
from operator_data.store.types import new_ulid

# A first guess at the category from the customer's words; the helpdesk corrects it.
_GUESSES = (
    ("token", re.compile(r"\btoken|\bkwh|\bmeter", re.IGNORECASE)),
    ("tagihan", re.compile(r"tagih|biaya|pulsa|potong|bayar|charge|refund", re.IGNORECASE)),
    ("gangguan", re.compile(r"padam|mati|gangguan|rusak|blackout|outage", re.IGNORECASE)),
)


def guess_category(text: str) -> str:
    for category, pattern in _GUESSES:
        if pattern.search(text):
            return category
    return "lainnya"


@dataclass(frozen=True, slots=True)
class SmsComplaint:
    reply: str
    ticket: str
    complaint: NewComplaint


def open_by_sms(
    *,
    message_id: str,
    msisdn: str | None,
    customer_id: str | None,
    text: str,
    received_at: datetime,
    lang: Lang,
    cal: calendar.HolidayCalendar | None = None,
) -> SmsComplaint:
    cal = cal or calendar.default()
    complaint_id = new_ulid(received_at)
    ticket = ticket_for(complaint_id)
    due = cal.due_on(received_at)
    reply = render(Reply.COMPLAINT_OPENED, lang, ticket=ticket, due=due.strftime("%d-%m-%Y"))
    return SmsComplaint(
        reply=reply,
        ticket=ticket,
        complaint=NewComplaint(
            channel="sms",
            category=guess_category(text),
            text=text,
            received_at=received_at,
            opened_by="sms",
            customer_id=customer_id,
            msisdn=msisdn,
            source_message_id=message_id,
            complaint_id=complaint_id,
        ),
    )

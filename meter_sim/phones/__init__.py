"""Simulated customers' phones: they send commands to the short code and keep what they get.

phone = SimulatedPhone("+6281234567890", network, short_code="81234", pin="1234",
                       behaviour=Behaviour(typo_rate=0.1, seed=7), clock=clock)
phone.buy(100_000); phone.balance()
...
report = check_ledger(phones, meters)   # purchases vs receipts vs credited tokens
"""

from meter_sim.phones.behaviour import Behaviour
from meter_sim.phones.inbox import InboxSms, Notice, NoticeKind, read_notice
from meter_sim.phones.ledger import LedgerReport, check_ledger
from meter_sim.phones.phone import Intent, SentCommand, SimulatedPhone
from meter_sim.phones.texts import amount_text, buy_text, typo

__all__ = [
    "Behaviour",
    "InboxSms",
    "Intent",
    "LedgerReport",
    "Notice",
    "NoticeKind",
    "SentCommand",
    "SimulatedPhone",
    "amount_text",
    "buy_text",
    "check_ledger",
    "read_notice",
    "typo",
]

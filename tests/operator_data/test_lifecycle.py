"""The purchase lifecycle as data (operator_data/hub/lifecycle.py): every step is a move
the transaction machine allows, every move it allows is some event's, and the picture in
docs/architecture.md is the table itself."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from operator_data.hub import lifecycle
from operator_data.hub.lifecycle import STEPS, PurchaseEvent
from operator_data.store import TransactionState

T = TransactionState
DOCS = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"


def test_every_step_is_a_legal_move() -> None:
    assert lifecycle.illegal_steps() == []


def test_every_legal_move_has_its_event() -> None:
    assert lifecycle.unstepped_moves() == []


def test_the_checks_catch_a_wrong_table() -> None:
    paid = STEPS[PurchaseEvent.PAID]
    wrong = dict(STEPS) | {PurchaseEvent.PAID: replace(paid, sources=frozenset({T.REQUESTED}))}
    assert lifecycle.illegal_steps(wrong) == ["paid: requested -> token_issued"]
    assert "advising -> token_issued" in lifecycle.unstepped_moves(wrong)
    without = {e: s for e, s in STEPS.items() if e is not PurchaseEvent.METER_SILENT}
    assert lifecycle.unstepped_moves(without) == ["token_sent -> meter_timeout"]


def test_the_derived_state_sets() -> None:
    assert {T.REQUESTED, T.SUBMITTED, T.ADVISING} == lifecycle.OPEN
    assert {T.APPLIED, T.METER_REJECTED, T.REPORTED} == lifecycle.FINISHED
    assert {T.TOKEN_ISSUED, T.TOKEN_SENT, T.METER_TIMEOUT} == lifecycle.ANSWERABLE
    # Every state is open, waiting for the network or the meter, finished, or declined.
    waiting = lifecycle.ANSWERABLE
    assert lifecycle.OPEN | waiting | lifecycle.FINISHED | {T.DECLINED} == set(T)


def test_the_docs_show_the_table() -> None:
    assert lifecycle.picture() in DOCS.read_text(encoding="utf-8")

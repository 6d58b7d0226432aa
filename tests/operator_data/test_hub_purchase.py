"""Top-up by SMS, end to end: phone -> network -> gateway -> hub -> P2APST (TCP) -> meter
(real frames, real STS decoder) -> receipt and transaction report."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from meter_sim.meter.simulated import MeterIdentity, SimulatedMeter
from meter_sim.meter.state_store import StateStore
from operator_data.store import Flow, MessageState, Store, TransactionState, schema
from operator_data.store.transitions import TRANSACTIONS, history
from operator_data.store.workflow_schema import hub_deliveries
from p2apst_adapter.dialect import Mti
from p2apst_adapter.simulator import Fault, SimulatorSettings
from tests.operator_data.hub_support import (
    CUSTOMER,
    METER,
    METER_SIM,
    PHONE,
    PIN,
    PRICES,
    SHORT_CODE,
    running_rig,
    sim_meter,
)

pytestmark = pytest.mark.timeout(60)


async def test_purchase_by_sms_applies_the_token_once_and_reports_it(
    store: Store, tmp_path: Path
) -> None:
    async with running_rig(store, tmp_path) as rig:
        assert rig.simulator is not None and rig.client is not None
        rig.phone.text(f"BELI 100rb {PIN}")
        await rig.until(rig.inbox_has(2))
        await rig.client.drain_reports()

        async def reported() -> bool:
            txs = await rig.rows(schema.transactions)
            return len(txs) == 1 and txs[0].state == TransactionState.REPORTED

        await rig.until(reported)

        accepted, receipt = rig.phone.inbox
        assert accepted.startswith("Pembelian Rp100.000 utk meter 14000000001 diproses")
        assert receipt.startswith("Token Rp100.000 masuk ke meter 14000000001")
        assert len(rig.meter.applied) == 1
        token = rig.meter.applied[0]
        assert "-".join(token[i : i + 4] for i in range(0, 20, 4)) in receipt
        assert rig.simulator.received("2200") == 1
        assert len(rig.simulator.ledger.reports()) == 1

        (tx,) = await rig.rows(schema.transactions)
        assert tx.meter_number == METER and tx.phone_msisdn == PHONE
        assert tx.amount_idr == 100_000 and tx.meter_outcome == "accepted"
        assert tx.token_sealed is not None and token.encode() not in tx.token_sealed
        async with rig.store.read() as conn:
            states = [s.state for s in await history(conn, TRANSACTIONS, tx.id)]
        assert states == [
            "requested", "submitted", "token_issued", "token_sent", "applied", "reported",
        ]  # fmt: skip

        # The token never rests in clear: not in the log, not in any outbox payload.
        for message in await rig.rows(schema.messages):
            assert token not in (message.body or "")
            assert token.encode() not in (message.raw_pdu or b"")
        for item in await rig.rows(schema.outbox):
            assert token.encode() not in item.payload
        (logged_receipt,) = await rig.rows(schema.messages, schema.messages.c.kind == "receipt")
        assert "****" in logged_receipt.body
        (request,) = await rig.rows(schema.messages, schema.messages.c.flow == "customer_to_hub")
        assert PIN not in request.body and request.state == MessageState.PROCESSED


async def test_every_carried_sms_is_charged_once_at_its_flow_price(
    store: Store, tmp_path: Path
) -> None:
    async with running_rig(store, tmp_path) as rig:
        rig.phone.text(f"BELI 50rb {PIN}")
        await rig.until(rig.inbox_has(2))

        async def all_delivered() -> bool:
            out = await rig.rows(schema.messages, schema.messages.c.direction == "out")
            return len(out) == 3 and all(m.state == MessageState.DELIVERED for m in out)

        await rig.until(all_delivered)
        ledger = {row.message_id: row for row in await rig.rows(schema.cost_ledger)}
        for message in await rig.rows(schema.messages):
            charged = ledger[message.id]
            assert charged.amount_idr == PRICES[Flow(message.flow)]
            assert charged.price_version == "t1" and charged.customer_id == CUSTOMER
        assert len(ledger) == 5  # request, reply, token frame, TOKEN_RESULT, receipt


async def test_declined_purchase_tells_the_customer_and_sends_no_token(
    store: Store, tmp_path: Path
) -> None:
    below = SimulatorSettings(min_amount=Decimal(50_000))
    async with running_rig(store, tmp_path, simulator_settings=below) as rig:
        rig.phone.text(f"BELI 20rb {PIN}")
        await rig.until(rig.inbox_has(2))
        assert "Pembelian Rp20.000 gagal: nominal terlalu kecil. Anda tidak ditagih." in (
            rig.phone.inbox
        )
        (tx,) = await rig.rows(schema.transactions)
        assert tx.state == TransactionState.DECLINED and tx.response_code == "0041"
        assert not rig.meter.received
        assert await rig.count(hub_deliveries) == 0


async def test_purchase_applies_on_the_simulated_meter(store: Store, tmp_path: Path) -> None:
    """The same purchase against the full meter simulator (meter_sim.meter.simulated)."""
    async with running_rig(store, tmp_path) as rig:
        rig.network.detach(METER_SIM)
        identity = MeterIdentity(
            meter_number=METER,
            msisdn=METER_SIM,
            hub_msisdn=SHORT_CODE,
            power_va=1300,
            key_data=sim_meter().key_data,
            vending_key=sim_meter().vending_key,
            comms_keys={1: rig.comms_key},
            comms_key_id=1,
        )
        with StateStore(tmp_path / "meter.db") as meter_store:
            async with SimulatedMeter(identity, rig.network, meter_store) as meter:
                rig.phone.text(f"BELI 200rb {PIN}")
                await rig.until(rig.inbox_has(2))
                assert rig.phone.inbox[1].startswith("Token Rp200.000 masuk ke meter")
                assert meter.credit_kwh > 0
                assert len(meter.credited) == 1


async def test_an_unanswered_2200_is_advised_on_and_the_purchase_shows_advising(
    store: Store, tmp_path: Path
) -> None:
    """P2APST takes the 2200 but its answer is lost: the client asks with advices, and the
    purchase is ADVISING meanwhile (the helpdesk sees why it waits), then paid as usual."""
    async with running_rig(
        store, tmp_path, client_changes={"response_timeout": 0.3, "advice_interval": 0.0}
    ) as rig:
        assert rig.simulator is not None
        rig.simulator.script.push(Fault.no_answer(), Mti.PURCHASE_REQUEST)
        rig.phone.text(f"BELI 100rb {PIN}")
        await rig.until(rig.inbox_has(2))
        (tx,) = await rig.rows(schema.transactions)
        async with rig.store.read() as conn:
            states = [s.state for s in await history(conn, TRANSACTIONS, tx.id)]
        assert states[:4] == ["requested", "submitted", "advising", "token_issued"]
        assert rig.simulator.received("2200") == 1
        assert rig.simulator.received("2220") >= 1
        assert rig.phone.inbox[1].startswith("Token Rp100.000")
        assert len(rig.meter.applied) == 1

"""Registry behaviour on both backends: records, lifecycle, SIM swaps, PINs, sealed keys."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from sqlalchemy import select

from operator_data.crypto import MasterKey, SealError, open_sealed
from operator_data.registry import (
    Conflict,
    CustomerStatus,
    MeterIn,
    PinLocked,
    PinOk,
    PinWrong,
    Registry,
    RegistryError,
    SenderCustomer,
    SenderMeter,
    SimIn,
)
from operator_data.settings import PinPolicy
from operator_data.store import IllegalTransition, MeterState, NotFound, SimSwapState, Store, schema
from tests.operator_data.conftest import Clock
from tests.operator_data.helpers import customer, meter, registered_meter, sim

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def registry(store: Store, master_key: MasterKey, pin_policy: PinPolicy, clock: Clock) -> Registry:
    return Registry(store, master_key=master_key, pin_policy=pin_policy, clock=clock)


async def test_customer_create_get_update(registry: Registry, clock: Clock) -> None:
    made = await registry.create_customer(customer(1))
    assert made.status is CustomerStatus.ACTIVE and made.created_at == clock.now
    with pytest.raises(Conflict):
        await registry.create_customer(customer(1))
    clock.advance(timedelta(days=1))
    changed = await registry.update_customer(
        made.customer_id, power_va=2200, status=CustomerStatus.INACTIVE
    )
    assert changed.power_va == 2200 and changed.name == made.name
    assert changed.inactive_since == clock.now  # retention clock starts
    assert (await registry.get_customer(made.customer_id)) == changed
    with pytest.raises(NotFound):
        await registry.get_customer("999999999999")
    with pytest.raises(RegistryError):
        await registry.update_customer(made.customer_id, tariff_segment="r1 lowercase")


async def test_opt_out_is_recorded_with_its_time(registry: Registry, clock: Clock) -> None:
    await registry.create_customer(customer(1))
    out = await registry.set_opt_out(customer(1).customer_id, True, actor="sms")
    assert out.opted_out and out.opted_out_at == clock.now
    back = await registry.set_opt_out(customer(1).customer_id, False, actor="sms")
    assert not back.opted_out and back.opted_out_at is None


async def test_meter_lifecycle_legal_and_illegal(registry: Registry, clock: Clock) -> None:
    number = await registered_meter(registry)
    assert (await registry.get_meter(number)).state is MeterState.REQUESTED
    for target in (
        MeterState.CONNECTED,
        MeterState.ACTIVE,
        MeterState.SUSPENDED,
        MeterState.ACTIVE,
    ):
        clock.advance(timedelta(minutes=1))
        moved = await registry.transition_meter(number, target, actor="ops")
        assert moved.state is target and moved.state_at == clock.now
    with pytest.raises(IllegalTransition) as caught:
        await registry.transition_meter(number, MeterState.CONNECTED, actor="ops")
    assert caught.value.current == "active" and caught.value.target == "connected"
    await registry.transition_meter(number, MeterState.REMOVED, actor="ops", reason="dismantled")
    with pytest.raises(IllegalTransition):  # removed is terminal
        await registry.transition_meter(number, MeterState.ACTIVE, actor="ops")
    stamps = await registry.meter_history(number)
    assert [s.state for s in stamps] == [
        "requested",
        "connected",
        "active",
        "suspended",
        "active",
        "removed",
    ]
    assert stamps[-1].detail == "dismantled"
    assert [s.at for s in stamps] == sorted(s.at for s in stamps)
    with pytest.raises(NotFound):
        await registry.transition_meter("00000000000", MeterState.CONNECTED, actor="ops")


async def test_illegal_transition_writes_nothing(registry: Registry, store: Store) -> None:
    number = await registered_meter(registry)
    with pytest.raises(IllegalTransition):
        await registry.transition_meter(number, MeterState.SUSPENDED, actor="ops")
    async with store.read() as conn:
        rows = (await conn.execute(select(schema.meter_states.c.state))).all()
    assert [r.state for r in rows] == ["requested"]


async def test_meter_needs_its_customer(registry: Registry) -> None:
    with pytest.raises(NotFound):
        await registry.create_meter(meter(1, 1))
    with pytest.raises(RegistryError, match="supply_group_code"):
        MeterIn("14000000001", customer(1).customer_id, "12345", "01", 1, 2)
    with pytest.raises(RegistryError, match="base date"):
        MeterIn("14000000001", customer(1).customer_id, "123456", "01", 1, 2, base_date=2000)


async def test_comms_key_sealed_at_rest(
    registry: Registry, store: Store, master_key: MasterKey, pin_policy: PinPolicy
) -> None:
    key = secrets.token_bytes(16)
    number = await registered_meter(registry, key=key)
    async with store.read() as conn:
        raw = (await conn.execute(select(schema.meters.c.comms_key_sealed))).scalar_one()
    assert key not in raw and len(raw) == 1 + 12 + 16 + 16
    got = await registry.comms_key(number)
    assert got.key == key and got.key_id == "k1" and key.hex() not in repr(got)
    # Another master key cannot open it (whether or not its id is checked first).
    other = Registry(store, master_key=MasterKey(secrets.token_bytes(32)), pin_policy=pin_policy)
    with pytest.raises(SealError):
        await other.comms_key(number)
    # Below the key-id check, the GCM tag itself refuses a wrong key.
    with pytest.raises(SealError):
        open_sealed(MasterKey(secrets.token_bytes(32)), raw, aad=number)
    assert open_sealed(master_key, raw, aad=number) == key
    # The sealed value is bound to its meter: moved to another meter it does not open.
    second = await registered_meter(registry, 2)
    async with store.begin() as conn:
        await conn.execute(
            schema.meters.update()
            .where(schema.meters.c.meter_number == second)
            .values(comms_key_sealed=raw, comms_key_master_id=master_key.key_id, comms_key_id="k1")
        )
    with pytest.raises(SealError):
        await registry.comms_key(second)
    without = Registry(store, master_key=None, pin_policy=pin_policy)
    with pytest.raises(RegistryError):
        await without.comms_key(number)


async def test_frame_counters(registry: Registry) -> None:
    number = await registered_meter(registry, key=secrets.token_bytes(16))
    assert [await registry.reserve_tx_counter(number) for _ in range(3)] == [0, 1, 2]
    seen = await registry.frame_counters(number)
    assert seen.tx_counter == 3 and seen.rx_counter == 0 and seen.replay_window == b""
    assert await registry.save_rx_state(number, expected=seen, rx_counter=7, replay_window=b"\x81")
    # A stale compare-and-set loses.
    assert not await registry.save_rx_state(number, expected=seen, rx_counter=8, replay_window=b"")
    assert (await registry.frame_counters(number)).replay_window == b"\x81"


async def test_sim_binding_and_swap_approval(registry: Registry) -> None:
    number = await registered_meter(registry)
    first = await registry.create_sim(sim(1))
    assert first.msisdn == "+628112000001"
    await registry.bind_sim("0811 2000 001", number, actor="ops")
    assert (await registry.sim_of_meter(number)).msisdn == first.msisdn  # type: ignore[union-attr]
    second = await registry.create_sim(sim(2))
    with pytest.raises(Conflict):  # a bound meter changes SIM only through a swap
        await registry.bind_sim(second.msisdn, number, actor="ops")
    swap = await registry.request_sim_swap(
        number, second.msisdn, requested_by="alice", reason="modem replaced"
    )
    assert swap.state is SimSwapState.REQUESTED and swap.old_sim_id == first.sim_id
    # Not yet re-bound: tokens still go to the old SIM.
    assert (await registry.sim_of_meter(number)).msisdn == first.msisdn  # type: ignore[union-attr]
    with pytest.raises(Conflict):
        await registry.request_sim_swap(number, second.msisdn, requested_by="alice")
    with pytest.raises(RegistryError):  # four eyes
        await registry.approve_sim_swap(swap.swap_id, approved_by="alice")
    approved = await registry.approve_sim_swap(swap.swap_id, approved_by="bob")
    assert approved.state is SimSwapState.APPROVED and approved.decided_by == "bob"
    assert (await registry.sim_of_meter(number)).msisdn == second.msisdn  # type: ignore[union-attr]
    assert (await registry.get_sim(first.msisdn)).meter_number is None
    with pytest.raises(IllegalTransition):
        await registry.reject_sim_swap(swap.swap_id, rejected_by="carol")
    assert await registry.resolve_sender(second.msisdn) == SenderMeter(
        number, customer(1).customer_id
    )
    assert await registry.resolve_sender(first.msisdn) is None


async def test_rejected_swap_keeps_the_old_binding(registry: Registry) -> None:
    number = await registered_meter(registry)
    first = await registry.create_sim(sim(1))
    await registry.bind_sim(first.msisdn, number, actor="ops")
    second = await registry.create_sim(sim(2))
    swap = await registry.request_sim_swap(number, second.msisdn, requested_by="alice")
    rejected = await registry.reject_sim_swap(swap.swap_id, rejected_by="bob", note="suspicious")
    assert rejected.state is SimSwapState.REJECTED and rejected.decision_note == "suspicious"
    assert (await registry.sim_of_meter(number)).msisdn == first.msisdn  # type: ignore[union-attr]
    assert (await registry.get_sim(second.msisdn)).meter_number is None
    with pytest.raises(IllegalTransition):
        await registry.approve_sim_swap(swap.swap_id, approved_by="carol")


async def test_duplicate_sims_refused(registry: Registry) -> None:
    await registry.create_sim(sim(1))
    with pytest.raises(Conflict):
        await registry.create_sim(sim(1))
    with pytest.raises(RegistryError):
        await registry.create_sim(SimIn("112", "8962000000000000001", "Telkomsel", "Budi"))


async def test_pin_lockout_and_expiry(registry: Registry, clock: Clock) -> None:
    await registry.create_customer(customer(1))
    phone = await registry.register_phone("081234567890", customer(1).customer_id)
    assert phone.msisdn == "+6281234567890" and not phone.pin_set
    with pytest.raises(RegistryError):
        await registry.verify_pin(phone.msisdn, "123456")  # no PIN yet
    with pytest.raises(RegistryError):
        await registry.set_pin(phone.msisdn, "12ab56", actor="helpdesk")
    await registry.set_pin(phone.msisdn, "246810", actor="helpdesk")
    assert await registry.verify_pin(phone.msisdn, "246810") == PinOk()
    assert await registry.verify_pin(phone.msisdn, "000000") == PinWrong(attempts_left=2)
    # A success resets the count.
    assert await registry.verify_pin(phone.msisdn, "246810") == PinOk()
    assert await registry.verify_pin(phone.msisdn, "000000") == PinWrong(attempts_left=2)
    assert await registry.verify_pin(phone.msisdn, "000001") == PinWrong(attempts_left=1)
    locked = await registry.verify_pin(phone.msisdn, "000002")
    assert locked == PinLocked(until=clock.now + timedelta(minutes=30))
    # While locked even the right PIN is refused.
    assert await registry.verify_pin(phone.msisdn, "246810") == locked
    clock.advance(timedelta(minutes=29))
    assert await registry.verify_pin(phone.msisdn, "246810") == locked
    clock.advance(timedelta(minutes=1))
    assert await registry.verify_pin(phone.msisdn, "246810") == PinOk()
    assert (await registry.get_phone(phone.msisdn)).failed_attempts == 0


async def test_pin_reset_clears_lockout(registry: Registry) -> None:
    await registry.create_customer(customer(1))
    phone = await registry.register_phone("081234567890", customer(1).customer_id)
    await registry.set_pin(phone.msisdn, "111111", actor="helpdesk")
    for _ in range(3):
        await registry.verify_pin(phone.msisdn, "999999")
    assert isinstance(await registry.verify_pin(phone.msisdn, "111111"), PinLocked)
    await registry.set_pin(phone.msisdn, "222222", actor="helpdesk")
    assert await registry.verify_pin(phone.msisdn, "222222") == PinOk()


async def test_pin_is_stored_as_a_keyed_salted_hash(registry: Registry, store: Store) -> None:
    await registry.create_customer(customer(1))
    await registry.register_phone("081234567890", customer(1).customer_id)
    await registry.register_phone("081234567891", customer(1).customer_id)
    await registry.set_pin("081234567890", "135790", actor="t")
    await registry.set_pin("081234567891", "135790", actor="t")
    async with store.read() as conn:
        hashes = (await conn.execute(select(schema.customer_phones.c.pin_hash))).scalars().all()
    assert all(h.startswith("hmac1$") and "135790" not in h for h in hashes)
    assert hashes[0] != hashes[1]  # per-PIN salt


async def test_phone_registration_rules(registry: Registry) -> None:
    await registry.create_customer(customer(1))
    await registry.create_customer(customer(2))
    await registry.register_phone("081234567890", customer(1).customer_id)
    with pytest.raises(Conflict):
        await registry.register_phone("+62 812-3456-7890", customer(2).customer_id)
    made = await registry.create_sim(sim(1))
    with pytest.raises(Conflict):
        await registry.register_phone(made.msisdn, customer(2).customer_id)
    assert await registry.resolve_sender("6281234567890") == SenderCustomer(
        customer(1).customer_id, "+6281234567890"
    )
    assert await registry.resolve_sender("not a number") is None


async def test_update_meter_key_data(registry: Registry) -> None:
    number = await registered_meter(registry)
    changed = await registry.update_meter(number, key_revision=2, tariff_index="07", actor="ops")
    assert (changed.key_revision, changed.tariff_index, changed.supply_group_code) == (
        2,
        "07",
        "123456",
    )
    with pytest.raises(RegistryError, match="key_revision"):
        await registry.update_meter(number, key_revision=10, actor="ops")

"""A deterministic fleet: same seed, same customers, same CSV; the CSV imports; the P2APST
simulator's keys match the meters'; a fleet runs a simulated day."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from firmware_protocol import sts
from firmware_protocol.frames import Telemetry, TokenDelivery, TokenOutcome, TokenResult
from meter_sim.clock import SimClock
from meter_sim.fleet import (
    DEFAULT_HUB_MSISDN,
    REGISTRY_COLUMNS,
    Fleet,
    build_members,
    comms_key,
    p2apst_meters_json,
    pins,
    registry_csv,
    sim_meters,
)
from meter_sim.meter.state_store import StateStore
from meter_sim.network import SmsNetwork
from operator_data.registry import csv_io
from p2apst_adapter.simulator import SimMeter, load_meters
from tests.meter_sim.sim_hub import SimHub

pytestmark = pytest.mark.timeout(30)
START = datetime(2026, 11, 2, tzinfo=UTC)


def test_the_same_seed_makes_the_same_fleet() -> None:
    a, b = build_members(40, seed=7), build_members(40, seed=7)
    assert a == b
    assert registry_csv(a) == registry_csv(b)
    other = build_members(40, seed=8)
    assert {m.meter_number for m in a}.isdisjoint({m.meter_number for m in other}) or a != other
    assert registry_csv(a) != registry_csv(other)
    # a smaller fleet from the same seed is the start of the larger one
    assert build_members(10, seed=7) == a[:10]


def test_members_are_well_formed_and_unique() -> None:
    members = build_members(200, seed=1)
    numbers = [m.meter_number for m in members]
    assert len(set(numbers)) == 200 and all(re.fullmatch(r"[0-9]{11}", n) for n in numbers)
    assert all(re.fullmatch(r"[0-9]{12}", m.customer_id) for m in members)
    msisdns = [m.identity.msisdn for m in members] + [m.phone_msisdn for m in members]
    assert len(set(msisdns)) == 400 and DEFAULT_HUB_MSISDN not in msisdns
    assert all(re.fullmatch(r"\+628[0-9]{8,11}", x) for x in msisdns)
    assert all(re.fullmatch(r"[0-9]{4}", m.pin) for m in members)
    assert {m.identity.power_va for m in members} <= {450, 900, 1300, 2200, 3500, 5500}
    assert all(m.identity.key_data.drn == m.meter_number for m in members)
    assert all(
        m.identity.comms_keys[1] == comms_key(1, m.meter_number)
        and len(m.identity.comms_keys[1]) == 16
        for m in members
    )
    assert len({m.identity.comms_keys[1] for m in members}) == 200
    assert pins(members)[members[0].customer_id] == members[0].pin


def test_the_csv_has_the_registry_columns_and_imports_without_issues() -> None:
    assert REGISTRY_COLUMNS == csv_io.COLUMNS
    members = build_members(50, seed=3)
    for keys in (True, False):
        text = registry_csv(members, include_comms_keys=keys)
        assert csv_io.validate_csv(io.StringIO(text)) == []
        assert len(text.splitlines()) == 51


def test_the_p2apst_simulators_tokens_open_in_the_meters() -> None:
    members = build_members(5, seed=4)
    for member, sim in zip(members, sim_meters(members), strict=True):
        assert isinstance(sim, SimMeter)
        assert (sim.meter_number, sim.customer_id, sim.power_va) == (
            member.meter_number,
            member.customer_id,
            member.identity.power_va,
        )
        assert sim.decoder_key() == member.identity.decoder_key()
        # SimMeter.from_json defaults (the simulator's --meters file) agree as well
        assert SimMeter.from_json(
            {"meter_number": member.meter_number, "customer_id": member.customer_id,
             "customer_name": member.customer_name}
        ).decoder_key() == member.identity.decoder_key()  # fmt: skip


def test_the_p2apst_meters_file_loads_as_the_same_register(tmp_path: Path) -> None:
    members = build_members(8, seed=5)
    path = tmp_path / "meters.json"
    path.write_text(json.dumps(p2apst_meters_json(members)), encoding="utf-8")
    assert load_meters(path) == sim_meters(members)


async def test_a_fleet_runs_a_simulated_day() -> None:
    clock = SimClock(START)
    members = build_members(4, seed=11)
    async with SmsNetwork(seed=1, clock=clock, sleep=clock.sleep) as network:
        hub = SimHub(network, DEFAULT_HUB_MSISDN)
        for m in members:
            hub.add(m.identity)
        with StateStore(":memory:") as store:
            async with Fleet(
                members, network, store, clock=clock, sleep=clock.sleep, reporting_interval_min=360
            ) as fleet:
                await fleet.advance(START + timedelta(days=1))
                await hub.wait_for(lambda: len(hub.messages(Telemetry)) == 16)
                assert clock() == START + timedelta(days=1)
                per_meter = {
                    r.headers[0].meter_number
                    for r in hub.received
                    if isinstance(r.message, Telemetry)
                }
                assert per_meter == {m.meter_number for m in members}
                target = members[0]
                tok = sts.encode(
                    sts.credit(0, 1, START, Decimal(20), target.identity.base_date),
                    sim_meters([target])[0].decoder_key(),
                )
                hub.send(target.meter_number, TokenDelivery(5, tok))
                await hub.wait_for(lambda: len(hub.messages(TokenResult)) == 1)
                (result,) = hub.messages(TokenResult)
                assert isinstance(result, TokenResult) and result.outcome is TokenOutcome.ACCEPTED
                assert fleet.meter(target.meter_number).credited[0].token == tok
                assert fleet.phone(target.meter_number).pin == target.pin

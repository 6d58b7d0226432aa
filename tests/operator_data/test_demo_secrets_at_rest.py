"""After a demo in which customers mistype commands and PINs, no file in the demo's data
directory (hub store, gateway spool and journal, their WAL files, meters' state, exports,
logs) holds a token the demo issued or a customer's command with its PIN (issue 16)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from meter_sim.phones.phone import SimulatedPhone
from operator_data.demo import DemoFaults, DemoOptions
from operator_data.demo.run import DENOMINATIONS, build_world
from operator_data.demo.summary import collect_summary

pytestmark = pytest.mark.timeout(240)


def _token_forms(token: str) -> list[bytes]:
    """A 20-digit token as it may be written: whole, or in groups of four."""
    groups = [token[i : i + 4] for i in range(0, 20, 4)]
    return [token.encode(), " ".join(groups).encode(), "-".join(groups).encode()]


def _pin_forms(text: str, pin: str) -> list[bytes]:
    """A customer's command as typed, and its PIN as the word after a separator (how any
    log or store would hold it in clear)."""
    return [text.encode(), *(f"{sep}{pin}".encode() for sep in (" ", "#", ",", "*"))]


def _files(root: Path) -> list[Path]:
    """Every file, the simulated meters' state (meters.db, which keeps token digests) too."""
    return sorted(p for p in root.rglob("*") if p.is_file())


def _answered(phone: SimulatedPhone) -> Callable[[], bool]:
    """Every SMS the phone sent is answered, and a right purchase has its receipt."""
    bought = any(c.valid_purchase for c in phone.sent)
    return lambda: len(phone.inbox) >= len(phone.sent) and (not bought or bool(phone.receipts()))


def _scan(root: Path, needles: dict[bytes, str]) -> list[str]:
    found = []
    pattern = re.compile(b"|".join(re.escape(n) + rb"(?![0-9])" for n in needles))
    for path in _files(root):
        for match in pattern.finditer(path.read_bytes()):
            found.append(f"{path.relative_to(root)}: {needles[match[0]]} ({match[0]!r})")
    return found


async def test_no_clear_token_or_pin_in_the_demo_data_directory(tmp_path: Path) -> None:
    options = DemoOptions(
        meters=8,
        modems=2,
        duration=None,
        faults=DemoFaults.parse("typos=0.3,wrong_pin=0.3"),
        seed=11,
        data_dir=tmp_path / "demo",
        summary=None,
        web_port=None,
        purchase_rate=2.0,
        drain_seconds=60,
        live=False,
    )
    async with build_world(options) as world:
        world.fleet.start(tick_s=5.0)
        phones = world.fleet.phones
        for n, phone in enumerate(phones):
            phone.buy(DENOMINATIONS[n % len(DENOMINATIONS)])
        # what the old masking left in clear: mistyped keywords, separators the parser takes
        typed = ["BRLI 100rb {pin}", "EBLI 50k {pin}", "BELI 100000 {pin}#", "#BELI 20000 {pin}"]
        for phone, form in zip(phones, typed, strict=False):
            phone.send_text(form.format(pin=phone.pin))
        phones[-1].send_text(f"BELI,50000,{phones[-1].pin},")
        async with asyncio.timeout(150):
            for phone in phones:
                await phone.wait_for(_answered(phone))
        summary = await collect_summary(world, drain=options.drain_seconds)
        tokens = [e.token for e in world.simulator.ledger.paid() if e.token]
        sent = [(c.text, phone.pin) for phone in phones for c in phone.sent]
        # While it runs too, WAL files included: once the gateway's housekeeping has run a
        # round after the last answer (a whole round, so the wait starts afresh).
        keeper = world.housekeeper
        assert keeper is not None
        await keeper.wait_for_rounds(keeper.rounds + 2)
        running = _scan(options.data_dir, _needles(tokens, sent))
        open_files = [p.name for p in _files(options.data_dir)]
    assert summary["purchases_paid"] > 0 and tokens
    assert any(c.typo for p in phones for c in p.sent)
    assert any(c.wrong_pin for p in phones for c in p.sent)
    assert {"pintar.db-wal", "gateway-spool.db-wal", "gateway-inbound.db-wal"} <= set(open_files)
    assert {"meters.db", "meters.db-wal"} <= set(open_files)
    assert running == [], open_files
    files = [p.name for p in _files(options.data_dir)]
    assert {"pintar.db", "gateway-spool.db", "gateway-inbound.db"} <= set(files)
    assert _scan(options.data_dir, _needles(tokens, sent)) == [], files


def _needles(tokens: list[str], sent: list[tuple[str, str]]) -> dict[bytes, str]:
    """What must not be found, and what it is: every token in every form, every command
    as typed and its PIN (right or wrong) after a separator."""
    needles: dict[bytes, str] = {}
    for token in tokens:
        needles.update({form: f"token {token}" for form in _token_forms(token)})
    for text, pin in sent:
        needles.update({form: f"PIN of {text!r}" for form in _pin_forms(text, pin)})
        wrong = re.findall(r"(?<![0-9])[0-9]{4}(?![0-9])", text)  # PINs are 4 digits here
        needles.update({f" {w}".encode(): f"PIN-like word of {text!r}" for w in wrong})
    return needles

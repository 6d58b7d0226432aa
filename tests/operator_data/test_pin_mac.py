"""Customer PINs as keyed hashes (issue 14, item 4), on both backends: the hmac1 form, its
binding to the phone number and the master key, conversion of older scrypt rows, no write
on the purchase hot path, and the unchanged lock-out."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select, update

import operator_data.registry.registry as registry_module
from operator_data.crypto import (
    MasterKey,
    PinHashError,
    PinHashKeyMismatch,
    PinMacKey,
    hash_pin,
    verify_customer_pin,
)
from operator_data.registry import PinLocked, PinOk, PinWrong, Registry, RegistryError
from operator_data.settings import PinPolicy
from operator_data.store import Store, schema
from tests.operator_data.conftest import Clock
from tests.operator_data.helpers import customer

pytestmark = pytest.mark.timeout(60)

phones = schema.customer_phones
PHONE = "+6281234567890"
OTHER = "+6281234567891"


@pytest.fixture
def registry(store: Store, master_key: MasterKey, pin_policy: PinPolicy, clock: Clock) -> Registry:
    return Registry(store, master_key=master_key, pin_policy=pin_policy, clock=clock)


async def _phones(registry: Registry, *numbers: str) -> None:
    await registry.create_customer(customer(1))
    for number in numbers:
        await registry.register_phone(number, customer(1).customer_id)


async def _stored(store: Store, number: str) -> str:
    async with store.read() as conn:
        stored = await conn.scalar(select(phones.c.pin_hash).where(phones.c.msisdn == number))
    assert isinstance(stored, str)
    return stored


async def _put(store: Store, number: str, **values: Any) -> None:
    async with store.begin() as conn:
        await conn.execute(update(phones).where(phones.c.msisdn == number).values(**values))


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    """Every SQL statement the store's engine sends while the block is open."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    engine = store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _writes(seen: list[str]) -> list[str]:
    verbs = ("UPDATE", "INSERT", "DELETE", "BEGIN IMMEDIATE")
    return [s for s in seen if s.lstrip().upper().startswith(verbs)]


async def test_new_form_verifies_and_refuses_wrong_pins(
    registry: Registry, store: Store, master_key: MasterKey
) -> None:
    await _phones(registry, PHONE, OTHER)
    await registry.set_pin(PHONE, "135790", actor="t")
    await registry.set_pin(OTHER, "135790", actor="t")
    stored = await _stored(store, PHONE)
    form, key_id, salt, mac = stored.split("$")
    assert (form, key_id) == ("hmac1", master_key.key_id)
    assert len(bytes.fromhex(salt)) == 16 and len(bytes.fromhex(mac)) == 32
    assert "135790" not in stored
    assert stored != await _stored(store, OTHER)  # same PIN, own salt
    assert await registry.verify_pin(PHONE, "135790") == PinOk()
    assert await registry.verify_pin(PHONE, "135791") == PinWrong(attempts_left=2)
    assert await registry.verify_pin(PHONE, "13579") == PinWrong(attempts_left=1)
    assert await registry.verify_pin("081234567890", "135790") == PinOk()  # local spelling


async def test_hash_moved_to_another_phone_does_not_verify(
    registry: Registry, store: Store
) -> None:
    await _phones(registry, PHONE, OTHER)
    await registry.set_pin(PHONE, "135790", actor="t")
    await registry.set_pin(OTHER, "864200", actor="t")
    await _put(store, OTHER, pin_hash=await _stored(store, PHONE))
    assert await registry.verify_pin(OTHER, "135790") == PinWrong(attempts_left=2)
    assert await registry.verify_pin(PHONE, "135790") == PinOk()


async def test_scrypt_row_is_converted_on_a_correct_pin_only(
    registry: Registry, store: Store, master_key: MasterKey
) -> None:
    await _phones(registry, PHONE)
    legacy = hash_pin("135790")
    await _put(store, PHONE, pin_hash=legacy, failed_attempts=0)
    assert await registry.verify_pin(PHONE, "000000") == PinWrong(attempts_left=2)
    assert await _stored(store, PHONE) == legacy  # a wrong PIN converts nothing
    assert await registry.verify_pin(PHONE, "135790") == PinOk()
    converted = await _stored(store, PHONE)
    assert converted.startswith(f"hmac1${master_key.key_id}$")
    assert (await registry.get_phone(PHONE)).failed_attempts == 0  # reset in the same UPDATE
    # The converted hash holds the same PIN, and only that PIN.
    assert await registry.verify_pin(PHONE, "135790") == PinOk()
    assert await registry.verify_pin(PHONE, "135791") == PinWrong(attempts_left=2)
    assert await _stored(store, PHONE) == converted


async def test_pin_reset_during_a_scrypt_check_is_not_overwritten(
    registry: Registry, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A helpdesk reset landing between the read and the UPDATE wins: the conversion must
    not write the old PIN's hash over it, and the old PIN is judged against the new hash."""
    await _phones(registry, PHONE)
    await _put(store, PHONE, pin_hash=hash_pin("135790"))
    loop = asyncio.get_running_loop()
    real = registry_module.verify_customer_pin
    resets: list[None] = []

    def check_then_reset(*args: Any) -> bool:
        verdict = real(*args)
        if not resets:  # scrypt runs in a worker thread: reset the PIN on the loop meanwhile
            reset = registry.set_pin(PHONE, "246802", actor="helpdesk")
            asyncio.run_coroutine_threadsafe(reset, loop).result(timeout=30)
            resets.append(None)
        return verdict

    monkeypatch.setattr(registry_module, "verify_customer_pin", check_then_reset)
    assert await registry.verify_pin(PHONE, "135790") == PinWrong(attempts_left=2)
    assert resets == [None]
    assert await registry.verify_pin(PHONE, "246802") == PinOk()


async def test_correct_pin_with_nothing_to_reset_writes_nothing(
    registry: Registry, store: Store
) -> None:
    await _phones(registry, PHONE)
    await registry.set_pin(PHONE, "135790", actor="t")
    with statements(store) as seen:
        assert await registry.verify_pin(PHONE, "135790") == PinOk()
    assert any("customer_phones" in s for s in seen)  # the listener does see the read
    assert _writes(seen) == []
    # Control: with a failed attempt to reset, the same call does write.
    assert await registry.verify_pin(PHONE, "000000") == PinWrong(attempts_left=2)
    with statements(store) as seen:
        assert await registry.verify_pin(PHONE, "135790") == PinOk()
    assert [s for s in _writes(seen) if s.lstrip().upper().startswith("UPDATE")]
    assert (await registry.get_phone(PHONE)).failed_attempts == 0


async def test_expired_lock_is_cleared_by_the_next_correct_pin(
    registry: Registry, store: Store, clock: Clock
) -> None:
    await _phones(registry, PHONE)
    await registry.set_pin(PHONE, "135790", actor="t")
    await _put(store, PHONE, locked_until=clock.now - timedelta(minutes=1))
    with statements(store) as seen:
        assert await registry.verify_pin(PHONE, "135790") == PinOk()
    assert _writes(seen)
    assert (await registry.get_phone(PHONE)).locked_until is None


async def test_lockout_is_unchanged(registry: Registry, store: Store, clock: Clock) -> None:
    await _phones(registry, PHONE)
    await registry.set_pin(PHONE, "135790", actor="t")
    assert await registry.verify_pin(PHONE, "000000") == PinWrong(attempts_left=2)
    assert await registry.verify_pin(PHONE, "000001") == PinWrong(attempts_left=1)
    locked = await registry.verify_pin(PHONE, "000002")
    assert locked == PinLocked(until=clock.now + timedelta(minutes=30))
    assert await registry.verify_pin(PHONE, "135790") == locked
    async with store.read() as conn:
        audited = (
            await conn.execute(
                select(schema.audit_log.c.action, schema.audit_log.c.subject_id).where(
                    schema.audit_log.c.action == "pin.locked"
                )
            )
        ).all()
    assert [tuple(r) for r in audited] == [("pin.locked", PHONE)]
    clock.advance(timedelta(minutes=30))
    assert await registry.verify_pin(PHONE, "135790") == PinOk()
    assert await registry.verify_pin(PHONE, "000000") == PinWrong(attempts_left=2)


async def test_concurrent_wrong_guesses_each_count(registry: Registry, store: Store) -> None:
    await _phones(registry, PHONE)
    await registry.set_pin(PHONE, "135790", actor="t")
    results = await asyncio.gather(*(registry.verify_pin(PHONE, f"00000{n}") for n in range(5)))
    wrong = sorted(r.attempts_left for r in results if isinstance(r, PinWrong))
    assert wrong == [1, 2]
    assert sum(isinstance(r, PinLocked) for r in results) == 3
    async with store.read() as conn:
        locks = await conn.scalar(
            select(func.count())
            .select_from(schema.audit_log)
            .where(schema.audit_log.c.action == "pin.locked")
        )
    assert locks == 1


async def test_scrypt_row_locks_out_like_any_other(
    registry: Registry, store: Store, clock: Clock
) -> None:
    await _phones(registry, PHONE)
    legacy = hash_pin("135790")
    await _put(store, PHONE, pin_hash=legacy)
    for _ in range(3):
        last = await registry.verify_pin(PHONE, "999999")
    assert isinstance(last, PinLocked)
    assert await registry.verify_pin(PHONE, "135790") == last
    assert await _stored(store, PHONE) == legacy  # refused while locked: not converted
    clock.advance(timedelta(minutes=30))
    assert await registry.verify_pin(PHONE, "135790") == PinOk()
    assert (await _stored(store, PHONE)).startswith("hmac1$")


async def test_other_master_key_is_a_registry_error(
    registry: Registry, store: Store, master_key: MasterKey, pin_policy: PinPolicy, clock: Clock
) -> None:
    await _phones(registry, PHONE)
    await registry.set_pin(PHONE, "135790", actor="t")
    rotated = MasterKey(secrets.token_bytes(32))
    after = Registry(store, master_key=rotated, pin_policy=pin_policy, clock=clock)
    with pytest.raises(RegistryError, match=f"master key {master_key.key_id}.*reset the PIN"):
        await after.verify_pin(PHONE, "135790")
    assert (await after.get_phone(PHONE)).failed_attempts == 0  # not counted as a guess
    await after.set_pin(PHONE, "135790", actor="helpdesk")  # the documented way out
    assert await after.verify_pin(PHONE, "135790") == PinOk()
    keyless = Registry(store, master_key=None, pin_policy=pin_policy, clock=clock)
    with pytest.raises(RegistryError, match="no master key"):
        await keyless.verify_pin(PHONE, "135790")
    with pytest.raises(RegistryError, match="no master key"):
        await keyless.set_pin(PHONE, "135790", actor="t")


@pytest.mark.parametrize(
    "damaged",
    ["", "plain 135790", "hmac1$", "hmac1$mk1-x$zz$zz", "scrypt$14$8$1$00$00", "scrypt$99$8$1$x"],
)
async def test_damaged_hash_is_a_registry_error(
    registry: Registry, store: Store, damaged: str
) -> None:
    await _phones(registry, PHONE)
    await _put(store, PHONE, pin_hash=damaged)
    with pytest.raises(RegistryError, match=PHONE.replace("+", r"\+")):
        await registry.verify_pin(PHONE, "135790")


# -- the pure functions -----------------------------------------------------------------

KEY = PinMacKey.derive(MasterKey(secrets.token_bytes(32)))
_hex = st.text("0123456789abcdef", max_size=70)
_small = st.integers(min_value=-2, max_value=40).map(str) | st.text(max_size=3)
_stored_strings = (
    st.text(max_size=130)
    | st.builds(lambda *f: "$".join(f), st.just("hmac1"), st.just(KEY.key_id), _hex, _hex)
    | st.builds(lambda *f: "$".join(f), st.just("hmac1"), st.text(max_size=20), _hex, _hex)
    # scrypt costs drawn small (or out of bounds) so the property stays fast
    | st.builds(
        lambda n, r, p, salt, digest: f"scrypt${n}${r}${p}${salt}${digest}",
        st.integers(min_value=0, max_value=4).map(str) | _small,
        st.integers(min_value=0, max_value=3).map(str) | _small,
        st.integers(min_value=0, max_value=2).map(str) | _small,
        _hex,
        _hex | st.just("00" * 32),
    )
)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=20), st.text(max_size=12), _stored_strings)
def test_verify_any_string_is_a_bool_or_pin_hash_error(number: str, pin: str, stored: str) -> None:
    try:
        verdict = verify_customer_pin(KEY, number, pin, stored)
    except PinHashError:
        return
    assert isinstance(verdict, bool)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=16), st.text(max_size=8), st.text(max_size=8))
def test_hash_verifies_for_its_phone_and_pin_only(number: str, pin: str, other: str) -> None:
    stored = KEY.hash(number, pin)
    assert verify_customer_pin(KEY, number, pin, stored)
    assert verify_customer_pin(KEY, number, other, stored) == (other == pin)
    assert verify_customer_pin(KEY, number + "0", pin, stored) is False
    rotated = PinMacKey.derive(MasterKey(secrets.token_bytes(32)))
    with pytest.raises(PinHashKeyMismatch):
        verify_customer_pin(rotated, number, pin, stored)


def test_scrypt_hashes_still_verify() -> None:
    legacy = hash_pin("135790")
    assert verify_customer_pin(KEY, PHONE, "135790", legacy)
    assert not verify_customer_pin(KEY, PHONE, "135791", legacy)
    assert not verify_customer_pin(KEY, PHONE, "\udc80", legacy)  # unencodable: just wrong


def test_subkey_is_not_the_master_key_and_is_stable() -> None:
    master = MasterKey(secrets.token_bytes(32))
    first, again = PinMacKey.derive(master), PinMacKey.derive(master)
    assert first == again and first.key != master.key and len(first.key) == 32
    assert master.key.hex() not in repr(first) and first.key.hex() not in repr(first)


async def test_each_lockout_in_a_row_lasts_twice_as_long(
    registry: Registry, store: Store, clock: Clock
) -> None:
    """3 wrong PINs lock for 30 minutes, the next 3 for 60, then 120, ... up to
    pin.lockout_max_minutes; a right PIN starts the doubling again."""
    await _phones(registry, PHONE)
    await registry.set_pin(PHONE, "135790", actor="t")
    lasted = []
    for _ in range(4):
        for n in range(3):
            last = await registry.verify_pin(PHONE, f"00000{n}")
        assert isinstance(last, PinLocked) and last.just_locked
        lasted.append((last.until - clock.now, last.lockouts))
        clock.advance(last.until - clock.now)
    assert lasted == [
        (timedelta(minutes=30), 1),
        (timedelta(minutes=60), 2),
        (timedelta(minutes=120), 3),
        (timedelta(minutes=240), 4),
    ]
    assert await registry.verify_pin(PHONE, "135790") == PinOk()  # resets the doubling
    for n in range(3):
        again = await registry.verify_pin(PHONE, f"00000{n}")
    assert isinstance(again, PinLocked) and again.until - clock.now == timedelta(minutes=30)


async def test_guesses_a_day_are_bounded(registry: Registry, clock: Clock) -> None:
    """An attacker guessing for a day gets ~20 tries, not 144 (3 per 30 minutes)."""
    await _phones(registry, PHONE)
    await registry.set_pin(PHONE, "135790", actor="t")
    start, tries = clock.now, 0
    while clock.now - start < timedelta(days=1):
        verdict = await registry.verify_pin(PHONE, f"{tries:06d}")
        assert not isinstance(verdict, PinOk)
        if not isinstance(verdict, PinLocked) or verdict.just_locked:
            tries += 1  # a guess checked (the one that locks it included)
        if isinstance(verdict, PinLocked):
            clock.advance(verdict.until - clock.now)
    assert tries <= 24

"""`Registry`: customers, meters, SIMs, phones and PINs, over the Store.

Every method is one database transaction. Methods that workflows compose into larger
units of work take an optional `conn` and then run inside the caller's transaction.
"""

from __future__ import annotations

import asyncio
import hmac
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from firmware_protocol.frames import ReplayWindow
from gateway.msisdn import MsisdnError, normalise
from operator_data.crypto.master_key import MasterKey
from operator_data.crypto.pin_mac import PinHashError, PinMacKey, is_scrypt, verify_customer_pin
from operator_data.crypto.pins import PinFormatError, check_pin_format
from operator_data.crypto.sealing import SealError, open_sealed, seal
from operator_data.registry.counter_ledger import CounterLedger, RxMark, fingerprint
from operator_data.registry.models import (
    CommsKey,
    Conflict,
    Customer,
    CustomerIn,
    CustomerStatus,
    FrameCounters,
    Identified,
    Meter,
    MeterIn,
    Phone,
    PinLocked,
    PinOk,
    PinResult,
    PinWrong,
    RegistryError,
    Sender,
    SenderCustomer,
    SenderMeter,
    Sim,
    SimIn,
    SimSwap,
    check_customer_id,
    check_iccid,
    check_meter_number,
)
from operator_data.settings import PinPolicy
from operator_data.store import schema
from operator_data.store.engine import Store
from operator_data.store.states import SIM_SWAP_MACHINE, MeterState, SimSwapState
from operator_data.store.transitions import METERS, NotFound, StateStamp, history, start, transition
from operator_data.store.types import utcnow

c = schema.customers
m = schema.meters
s = schema.sims
w = schema.sim_swaps
p = schema.customer_phones

COMMS_KEY_BYTES = 16  # AES-128-GCM frame key (DLMS security suite 0 practice)
_OPENED_KEYS = 200_000  # comms keys kept opened in memory (16 bytes each)


_COUNTER_MAX = 2**32 - 1
_FULL_BITMAP = 2**64 - 1  # a raised window: every counter of its 64 counts as seen


def _window(stored: bytes) -> ReplayWindow:
    return ReplayWindow.from_bytes(stored) if stored else ReplayWindow()


def msisdn(text: str) -> str:
    try:
        return normalise(text)
    except MsisdnError as error:
        raise RegistryError(str(error)) from None


class Registry:
    def __init__(
        self,
        store: Store,
        *,
        master_key: MasterKey | None,
        pin_policy: PinPolicy,
        clock: Callable[[], datetime] = utcnow,
        ledger: CounterLedger | None = None,
    ) -> None:
        self._store = store
        # Without a ledger, hub -> meter counters are only as safe as the database: a
        # restored backup would hand them out again (see counter_ledger).
        self._ledger = ledger
        # Ceilings this process has read or written: the ledger never lowers one, so a
        # reservation below a cached ceiling needs no trip to the ledger file at all.
        self._ceilings: dict[tuple[str, bytes], int] = {}
        # Inbound ceilings this process has raised (and so cleared the clean mark of): an
        # accepted counter below one needs no ledger write.
        self._rx_ceilings: dict[tuple[str, bytes], int] = {}
        self._session: str | None = None  # this worker's session in the ledger, if a hub
        self._master = master_key
        self._pin = pin_policy
        self._clock = clock
        # Opened comms keys by their sealed form: a meter reporting every 15 minutes need
        # not cost an AES-GCM open per SMS. A rotated key has a new sealed form, so it can
        # never be served stale.
        self._opened: OrderedDict[bytes, bytes] = OrderedDict()
        self._pin_mac: PinMacKey | None = None  # derived on first use: the master may be None

    @property
    def store(self) -> Store:
        return self._store

    @asynccontextmanager
    async def _tx(self, conn: AsyncConnection | None) -> AsyncIterator[AsyncConnection]:
        if conn is not None:
            yield conn
        else:
            async with self._store.begin() as own:
                yield own

    def now(self) -> datetime:
        return self._clock()

    def require_master_key(self) -> MasterKey:
        if self._master is None:
            raise RegistryError(
                "no master key configured (PINTAR_SECURITY__MASTER_KEY or master_key_file)"
            )
        return self._master

    def _pin_key(self) -> PinMacKey:
        if self._pin_mac is None:
            self._pin_mac = PinMacKey.derive(self.require_master_key())
        return self._pin_mac

    async def audit(
        self,
        conn: AsyncConnection,
        actor: str,
        action: str,
        subject_type: str | None,
        subject_id: str | None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        await conn.execute(
            insert(schema.audit_log).values(
                at=self._clock(),
                actor=actor,
                action=action,
                subject_type=subject_type,
                subject_id=subject_id,
                detail=detail,
            )
        )

    # -- customers ---------------------------------------------------------------------

    async def create_customer(
        self, customer: CustomerIn, *, conn: AsyncConnection | None = None
    ) -> Customer:
        now = self._clock()
        async with self._tx(conn) as tx:
            exists = await tx.scalar(
                select(c.c.customer_id).where(c.c.customer_id == customer.customer_id)
            )
            if exists is not None:
                raise Conflict(f"customer {customer.customer_id} is already registered")
            await tx.execute(
                insert(c).values(
                    customer_id=customer.customer_id,
                    name=customer.name,
                    tariff_segment=customer.tariff_segment,
                    power_va=customer.power_va,
                    status=CustomerStatus.ACTIVE.value,
                    opted_out=False,
                    created_at=now,
                    updated_at=now,
                )
            )
            return await self._customer(tx, customer.customer_id)

    async def get_customer(self, customer_id: str) -> Customer:
        async with self._store.read() as conn:
            return await self._customer(conn, customer_id)

    async def _customer(self, conn: AsyncConnection, customer_id: str) -> Customer:
        row = (await conn.execute(select(c).where(c.c.customer_id == customer_id))).first()
        if row is None:
            raise NotFound(f"customer {customer_id} is not registered")
        return Customer.from_row(row)

    async def update_customer(
        self,
        customer_id: str,
        *,
        name: str | None = None,
        tariff_segment: str | None = None,
        power_va: int | None = None,
        status: CustomerStatus | None = None,
    ) -> Customer:
        async with self._store.begin() as conn:
            current = await self._customer(conn, customer_id)
            merged = CustomerIn(
                customer_id=customer_id,
                name=current.name if name is None else name,
                tariff_segment=current.tariff_segment if tariff_segment is None else tariff_segment,
                power_va=current.power_va if power_va is None else power_va,
            )
            now = self._clock()
            values: dict[str, Any] = {
                "name": merged.name,
                "tariff_segment": merged.tariff_segment,
                "power_va": merged.power_va,
                "updated_at": now,
            }
            if status is not None and status is not current.status:
                values["status"] = status.value
                # The retention clock for customer data starts when the customer leaves.
                values["inactive_since"] = now if status is CustomerStatus.INACTIVE else None
            await conn.execute(update(c).where(c.c.customer_id == customer_id).values(**values))
            return await self._customer(conn, customer_id)

    async def set_opt_out(self, customer_id: str, opted_out: bool, *, actor: str) -> Customer:
        """Record consent: STOP (opted_out=True) or START; the time is kept."""
        async with self._store.begin() as conn:
            await self._customer(conn, customer_id)
            now = self._clock()
            await conn.execute(
                update(c)
                .where(c.c.customer_id == customer_id)
                .values(
                    opted_out=opted_out, opted_out_at=now if opted_out else None, updated_at=now
                )
            )
            await self.audit(
                conn,
                actor,
                "consent.opt_out" if opted_out else "consent.opt_in",
                "customer",
                customer_id,
            )
            return await self._customer(conn, customer_id)

    # -- meters ------------------------------------------------------------------------

    async def create_meter(
        self,
        meter: MeterIn,
        *,
        comms_key: bytes | None = None,
        comms_key_id: str | None = None,
        state: MeterState = MeterState.REQUESTED,
        actor: str = "system",
        conn: AsyncConnection | None = None,
    ) -> Meter:
        """Register a meter in `state` (REQUESTED unless importing an existing fleet)."""
        now = self._clock()
        sealed = master_id = None
        if comms_key is not None:
            if len(comms_key) != COMMS_KEY_BYTES:
                raise RegistryError(f"comms key must be {COMMS_KEY_BYTES} bytes")
            if not comms_key_id:
                raise RegistryError("a comms key needs a comms_key_id")
            master = self.require_master_key()
            sealed, master_id = seal(master, comms_key, aad=meter.meter_number), master.key_id
        async with self._tx(conn) as tx:
            await self._customer(tx, meter.customer_id)
            exists = await tx.scalar(
                select(m.c.meter_number).where(m.c.meter_number == meter.meter_number)
            )
            if exists is not None:
                raise Conflict(f"meter {meter.meter_number} is already registered")
            await tx.execute(
                insert(m).values(
                    meter_number=meter.meter_number,
                    customer_id=meter.customer_id,
                    supply_group_code=meter.supply_group_code,
                    tariff_index=meter.tariff_index,
                    key_revision=meter.key_revision,
                    key_type=meter.key_type,
                    base_date=meter.base_date,
                    comms_key_sealed=sealed,
                    comms_key_master_id=master_id,
                    comms_key_id=comms_key_id if comms_key is not None else None,
                    tx_counter=0,
                    rx_counter=0,
                    replay_window=b"",
                    state=state.value,
                    state_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            if state is MeterState.REQUESTED:
                await start(
                    tx, METERS, meter.meter_number, state, at=now, history_values={"actor": actor}
                )
            else:
                # An imported meter enters the machine mid-way; say so in its history.
                await tx.execute(
                    insert(schema.meter_states).values(
                        meter_number=meter.meter_number,
                        state=state.value,
                        at=now,
                        actor=actor,
                        detail="imported",
                    )
                )
            return await self._meter(tx, meter.meter_number)

    async def get_meter(self, meter_number: str) -> Meter:
        async with self._store.read() as conn:
            return await self._meter(conn, meter_number)

    async def meters_of(self, customer_id: str) -> list[Meter]:
        async with self._store.read() as conn:
            rows = await conn.execute(
                select(m).where(m.c.customer_id == customer_id).order_by(m.c.meter_number)
            )
            return [Meter.from_row(r) for r in rows]

    async def meters_of_many(self, customer_ids: Collection[str]) -> dict[str, list[Meter]]:
        """`meters_of` for many customers in one read (a batch of purchases)."""
        found: dict[str, list[Meter]] = {cid: [] for cid in customer_ids}
        ids = sorted(found)
        async with self._store.read() as conn:
            for start_at in range(0, len(ids), 500):
                rows = await conn.execute(
                    select(m)
                    .where(m.c.customer_id.in_(ids[start_at : start_at + 500]))
                    .order_by(m.c.meter_number)
                )
                for r in rows:
                    found[r.customer_id].append(Meter.from_row(r))
        return found

    async def _meter(self, conn: AsyncConnection, meter_number: str) -> Meter:
        row = (await conn.execute(select(m).where(m.c.meter_number == meter_number))).first()
        if row is None:
            raise NotFound(f"meter {meter_number} is not registered")
        return Meter.from_row(row)

    async def update_meter(
        self,
        meter_number: str,
        *,
        supply_group_code: str | None = None,
        tariff_index: str | None = None,
        key_revision: int | None = None,
        key_type: int | None = None,
        base_date: int | None = None,
        actor: str,
    ) -> Meter:
        """Change STS key data (after a key-change token set has been accepted)."""
        async with self._store.begin() as conn:
            current = await self._meter(conn, meter_number)
            merged = MeterIn(
                meter_number=meter_number,
                customer_id=current.customer_id,
                supply_group_code=supply_group_code or current.supply_group_code,
                tariff_index=tariff_index or current.tariff_index,
                key_revision=current.key_revision if key_revision is None else key_revision,
                key_type=current.key_type if key_type is None else key_type,
                base_date=current.base_date if base_date is None else base_date,
            )
            await conn.execute(
                update(m)
                .where(m.c.meter_number == meter_number)
                .values(
                    supply_group_code=merged.supply_group_code,
                    tariff_index=merged.tariff_index,
                    key_revision=merged.key_revision,
                    key_type=merged.key_type,
                    base_date=merged.base_date,
                    updated_at=self._clock(),
                )
            )
            await self.audit(conn, actor, "meter.key_data.update", "meter", meter_number)
            return await self._meter(conn, meter_number)

    async def set_comms_key(
        self, meter_number: str, key: bytes, key_id: str, *, actor: str
    ) -> Meter:
        """Seal and store a new comms key; frame counters restart with the new key.

        Refuses (RegistryError) the meter's current key and, with a ledger, any key the
        meter has had before: under a key seen before, counters from 0 would repeat IVs
        already used (AES-GCM's one fatal misuse) and re-open the meter's old frames."""
        if len(key) != COMMS_KEY_BYTES:
            raise RegistryError(f"comms key must be {COMMS_KEY_BYTES} bytes")
        master = self.require_master_key()
        sealed = seal(master, key, aad=meter_number)
        async with self._store.begin() as conn:
            await self._meter(conn, meter_number)
            row = (
                await conn.execute(
                    select(m.c.comms_key_sealed, m.c.comms_key_master_id)
                    .where(m.c.meter_number == meter_number)
                    .with_for_update()
                )
            ).one()
            current: bytes | None = None
            if row.comms_key_sealed is not None and row.comms_key_master_id == master.key_id:
                current = open_sealed(master, bytes(row.comms_key_sealed), aad=meter_number)
                if hmac.compare_digest(current, key):
                    raise RegistryError(
                        f"meter {meter_number} already has this comms key: setting it again "
                        "would restart its frame counters and reuse AES-GCM IVs; give the "
                        "meter a new key"
                    )
            if self._ledger is not None:
                ledger, fp = self._ledger, fingerprint(meter_number, key)
                if await asyncio.to_thread(ledger.known, meter_number, fp):
                    raise RegistryError(
                        f"meter {meter_number} has had this comms key before (counter ledger "
                        f"{ledger.path}): its frame counters were used; give the meter a new key"
                    )
                # Both keys remembered before the database commits: a failed commit only
                # means this key cannot be tried again, never that a used key can. The old
                # one too: it may only ever have received frames, never reserved a counter.
                known = {(meter_number, fp): 0}
                if current is not None:
                    known[(meter_number, fingerprint(meter_number, current))] = 0
                await asyncio.to_thread(ledger.raise_to, known)
            await conn.execute(
                update(m)
                .where(m.c.meter_number == meter_number)
                .values(
                    comms_key_sealed=sealed,
                    comms_key_master_id=master.key_id,
                    comms_key_id=key_id,
                    tx_counter=0,
                    rx_counter=0,
                    replay_window=b"",
                    updated_at=self._clock(),
                )
            )
            await self.audit(
                conn, actor, "meter.comms_key.set", "meter", meter_number, {"comms_key_id": key_id}
            )
            return await self._meter(conn, meter_number)

    async def comms_key(self, meter_number: str) -> CommsKey:
        """The meter's comms key in clear. Raises NotFound, SealError (wrong master key or
        a sealed value moved to another meter)."""
        master = self.require_master_key()
        async with self._store.read() as conn:
            row = (
                await conn.execute(
                    select(m.c.comms_key_sealed, m.c.comms_key_master_id, m.c.comms_key_id).where(
                        m.c.meter_number == meter_number
                    )
                )
            ).first()
        if row is None:
            raise NotFound(f"meter {meter_number} is not registered")
        if row.comms_key_sealed is None:
            raise NotFound(f"meter {meter_number} has no comms key")
        if row.comms_key_master_id != master.key_id:
            raise SealError(
                f"comms key of meter {meter_number} was sealed under {row.comms_key_master_id}, "
                f"not the configured {master.key_id}"
            )
        key = open_sealed(master, row.comms_key_sealed, aad=meter_number)
        return CommsKey(meter_number, row.comms_key_id, key)

    async def comms_keys(
        self, meter_numbers: Collection[str]
    ) -> dict[str, CommsKey | NotFound | SealError]:
        """`comms_key` for many meters in one read; each meter's key or why it has none."""
        return (await self.comms_keys_and_sims(meter_numbers))[0]

    async def comms_keys_and_sims(
        self, meter_numbers: Collection[str]
    ) -> tuple[dict[str, CommsKey | NotFound | SealError], dict[str, str]]:
        """`comms_keys`, and each meter's SIM number (meters without one left out), in one
        statement: what a token frame needs to be sealed and addressed."""
        wanted = sorted(set(meter_numbers))
        rows: dict[str, Any] = {}
        numbers: dict[str, str] = {}
        async with self._store.read() as conn:
            for start_at in range(0, len(wanted), 500):
                for r in await conn.execute(
                    select(
                        m.c.meter_number,
                        m.c.comms_key_sealed,
                        m.c.comms_key_master_id,
                        m.c.comms_key_id,
                        s.c.msisdn,
                    )
                    .select_from(m.outerjoin(s, s.c.meter_number == m.c.meter_number))
                    .where(m.c.meter_number.in_(wanted[start_at : start_at + 500]))
                ):
                    rows[r.meter_number] = r
                    if r.msisdn is not None:
                        numbers[str(r.meter_number)] = str(r.msisdn)
        return self._keys_of(wanted, rows), numbers

    def _keys_of(
        self, wanted: Sequence[str], rows: dict[str, Any]
    ) -> dict[str, CommsKey | NotFound | SealError]:
        master = self.require_master_key()
        keys: dict[str, CommsKey | NotFound | SealError] = {}
        for meter_number in wanted:
            row = rows.get(meter_number)
            if row is None:
                keys[meter_number] = NotFound(f"meter {meter_number} is not registered")
            elif row.comms_key_sealed is None:
                keys[meter_number] = NotFound(f"meter {meter_number} has no comms key")
            elif row.comms_key_master_id != master.key_id:
                keys[meter_number] = SealError(
                    f"comms key of meter {meter_number} was sealed under "
                    f"{row.comms_key_master_id}, not the configured {master.key_id}"
                )
            else:
                try:
                    # Memoised: every paid batch needs its meters' keys again.
                    key = self._open_comms_key(master, bytes(row.comms_key_sealed), meter_number)
                except SealError as error:
                    keys[meter_number] = error
                    continue
                keys[meter_number] = CommsKey(meter_number, row.comms_key_id, key)
        return keys

    async def transition_meter(
        self,
        meter_number: str,
        target: MeterState,
        *,
        actor: str,
        reason: str | None = None,
        conn: AsyncConnection | None = None,
    ) -> Meter:
        """Move the meter along its lifecycle; raises IllegalTransition / NotFound."""
        now = self._clock()
        async with self._tx(conn) as tx:
            await transition(
                tx,
                METERS,
                meter_number,
                target,
                at=now,
                detail=reason,
                extra_values={"updated_at": now},
                history_values={"actor": actor},
            )
            return await self._meter(tx, meter_number)

    async def meter_history(self, meter_number: str) -> list[StateStamp]:
        async with self._store.read() as conn:
            return await history(conn, METERS, meter_number)

    async def reserve_tx_counter(
        self, meter_number: str, *, conn: AsyncConnection | None = None
    ) -> int:
        """The next frame counter for hub -> meter frames, never handed out twice."""
        async with self._tx(conn) as tx:
            return (await self.reserve_tx_counters(tx, {meter_number: 1}))[meter_number]

    async def reserve_tx_counters(
        self, conn: AsyncConnection, counts: dict[str, int]
    ) -> dict[str, int]:
        """`reserve_tx_counter` for many meters, `counts[meter]` counters each, in the
        caller's transaction: one locking read and one UPDATE for all. Returns each meter's
        first counter (the rest follow it). Raises NotFound for a meter not registered."""
        wanted = sorted(counts)
        if not wanted:
            return {}
        current: dict[str, int] = {}
        keyed: list[Any] = []
        for start_at in range(0, len(wanted), 500):
            rows = await conn.execute(
                select(
                    m.c.meter_number,
                    m.c.tx_counter,
                    m.c.comms_key_sealed,
                    m.c.comms_key_master_id,
                )
                .where(m.c.meter_number.in_(wanted[start_at : start_at + 500]))
                .order_by(m.c.meter_number)
                .with_for_update()
            )
            for r in rows:
                current[str(r.meter_number)] = int(r.tx_counter)
                keyed.append(r)
        missing = [meter for meter in wanted if meter not in current]
        if missing:
            raise NotFound(f"meter {missing[0]} is not registered")
        if self._ledger is not None:
            await self._reserve_in_ledger(self._ledger, keyed, counts)
        await conn.execute(
            update(m)
            .where(m.c.meter_number == bindparam("b_meter"))
            .values(tx_counter=bindparam("b_next")),
            [{"b_meter": meter, "b_next": current[meter] + counts[meter]} for meter in wanted],
        )
        return current

    def _fingerprints(self, rows: Sequence[Any]) -> dict[str, bytes]:
        """(meter -> key fingerprint) for rows with a key this master opens; a key that
        cannot be opened seals no frame, so it needs no counters recorded."""
        master = self._master
        found: dict[str, bytes] = {}
        if master is None:
            return found
        for row in rows:
            if row.comms_key_sealed is None or row.comms_key_master_id != master.key_id:
                continue
            meter = str(row.meter_number)
            try:
                key = self._open_comms_key(master, bytes(row.comms_key_sealed), meter)
            except SealError:
                continue
            found[meter] = fingerprint(meter, key)
        return found

    async def _reserve_in_ledger(
        self, ledger: CounterLedger, rows: Sequence[Any], counts: dict[str, int]
    ) -> None:
        # Raise the ledger's ceiling a block beyond the counters about to be handed out,
        # durably, before the caller's transaction commits (and so before any frame under
        # them exists). Most reservations stay within the block and write nothing.
        prints = self._fingerprints(rows)
        needed: dict[tuple[str, bytes], int] = {}
        for row in rows:
            meter = str(row.meter_number)
            fp = prints.get(meter)
            if fp is not None:
                needed[(meter, fp)] = int(row.tx_counter) + counts[meter]
        unsure = [pair for pair, top in needed.items() if top > self._ceilings.get(pair, -1)]
        if not unsure:
            return
        self._remember(await asyncio.to_thread(ledger.ceilings, unsure))
        raise_to = {
            pair: needed[pair] + ledger.block
            for pair in unsure
            if needed[pair] > self._ceilings.get(pair, -1)
        }
        await asyncio.to_thread(ledger.raise_to, raise_to)
        self._remember(raise_to)

    def _remember(self, ceilings: dict[tuple[str, bytes], int]) -> None:
        if len(self._ceilings) + len(ceilings) > _OPENED_KEYS:
            self._ceilings.clear()  # a cache only: the ledger file is the truth
        for pair, ceiling in ceilings.items():
            self._ceilings[pair] = max(ceiling, self._ceilings.get(pair, -1))

    async def apply_counter_ledger(self, *, inbound: bool = True) -> int:
        """Raise every meter's hub -> meter counter to the ceiling the ledger holds for its
        current key, skipping the rest of the block last reserved: run at start-up, so a
        restored database never hands out a counter used before. With `inbound`, and when
        no live hub worker holds the ledger, also raise each meter's replay window to the
        ledger's inbound floor (`pintar registry apply-ledger` after a restore; a hub worker
        does that part in `start_ledger_session`). Returns how many meters were moved
        (after a plain restart: the ones that had reserved a block)."""
        if self._ledger is None:
            return 0
        moved = await self._apply_tx_ceilings(self._ledger)
        if inbound and not await asyncio.to_thread(self._ledger.others_live):
            moved |= await self._raise_rx_floors(await asyncio.to_thread(self._ledger.all_rx))
        return len(moved)

    async def _apply_tx_ceilings(self, ledger: CounterLedger) -> set[str]:
        entries = await asyncio.to_thread(ledger.all)
        by_meter: dict[str, dict[bytes, int]] = {}
        for entry in entries:
            by_meter.setdefault(entry.meter_number, {})[entry.fingerprint] = entry.ceiling
        wanted = sorted(by_meter)
        moved: set[str] = set()
        for start_at in range(0, len(wanted), 500):
            async with self._store.begin() as conn:
                rows = list(
                    await conn.execute(
                        select(
                            m.c.meter_number,
                            m.c.tx_counter,
                            m.c.comms_key_sealed,
                            m.c.comms_key_master_id,
                        )
                        .where(m.c.meter_number.in_(wanted[start_at : start_at + 500]))
                        .order_by(m.c.meter_number)
                        .with_for_update()
                    )
                )
                prints = self._fingerprints(rows)
                lifts = []
                for row in rows:
                    meter = str(row.meter_number)
                    ceiling = by_meter[meter].get(prints.get(meter, b""))
                    if ceiling is not None and ceiling > int(row.tx_counter):
                        lifts.append({"b_meter": meter, "b_next": ceiling})
                if lifts:
                    await conn.execute(
                        update(m)
                        .where(m.c.meter_number == bindparam("b_meter"))
                        .values(tx_counter=bindparam("b_next")),
                        lifts,
                    )
                moved.update(str(lift["b_meter"]) for lift in lifts)
        return moved

    # -- meter -> hub high-water marks in the ledger (restores; see counter_ledger) ---------

    async def record_rx_counters(self, accepted: dict[str, tuple[bytes, int]]) -> None:
        """Before the transaction that accepts them commits: make sure the ledger's inbound
        ceiling is above each meter's highest accepted counter (`accepted[meter]` = (its
        comms key, that counter)). Mostly nothing to write: the ceiling is raised a block
        ahead, durably, once per RX_BLOCK counters per meter (and once per meter after the
        process starts, which also clears the meter's clean mark)."""
        ledger = self._ledger
        if ledger is None or not accepted:
            return
        needed = {
            (meter, fingerprint(meter, key)): highest + 1
            for meter, (key, highest) in accepted.items()
        }
        unsure = [pair for pair, need in needed.items() if need > self._rx_ceilings.get(pair, -1)]
        if not unsure:
            return
        marks = await asyncio.to_thread(ledger.rx_marks, unsure)
        raise_to: dict[tuple[str, bytes], int] = {}
        for pair in unsure:
            mark = marks.get(pair)
            if mark is not None and mark.clean is None and mark.ceiling >= needed[pair]:
                self._rx_ceilings[pair] = mark.ceiling  # another worker of ours raised it
            else:
                raise_to[pair] = max(needed[pair] + ledger.rx_block, mark.ceiling if mark else 0)
        await asyncio.to_thread(ledger.raise_rx, raise_to)
        if len(self._rx_ceilings) + len(raise_to) > _OPENED_KEYS:
            self._rx_ceilings.clear()  # a cache only (a miss costs a read, then a write)
        self._rx_ceilings.update(raise_to)

    async def start_ledger_session(self) -> int:
        """At a hub worker's start, before it accepts any meter frame: register it in the
        ledger and, unless another live worker already holds it (then the database is
        live, not restored), raise each meter's replay window to the ledger's floor for
        its key. Returns how many windows moved."""
        ledger = self._ledger
        if ledger is None:
            return 0
        begun = await asyncio.to_thread(ledger.begin_session)
        self._session = begun.session
        return 0 if begun.others_live else len(await self._raise_rx_floors(begun.rx))

    async def end_ledger_session(self) -> bool:
        """At a clean stop: record every meter's exact high-water mark as the clean mark if
        this is the last live worker on the ledger (so the next start refuses no new frame),
        and unregister. True if the marks were recorded."""
        ledger, session = self._ledger, self._session
        if ledger is None or session is None:
            return False
        self._session = None
        marks = await asyncio.to_thread(ledger.all_rx)
        clean: dict[tuple[str, bytes], int] = {}
        for rows, prints in await self._rx_rows(marks):
            for row in rows:
                meter = str(row.meter_number)
                fp = prints.get(meter)
                if fp is not None:
                    highest = _window(bytes(row.replay_window)).highest
                    clean[(meter, fp)] = 0 if highest is None else highest + 1
        return await asyncio.to_thread(ledger.end_session, session, clean)

    async def _rx_rows(self, marks: Sequence[RxMark]) -> list[tuple[list[Any], dict[str, bytes]]]:
        wanted = sorted({mark.meter_number for mark in marks})
        found = []
        async with self._store.read() as conn:
            for start_at in range(0, len(wanted), 500):
                rows = list(
                    await conn.execute(
                        select(
                            m.c.meter_number,
                            m.c.replay_window,
                            m.c.comms_key_sealed,
                            m.c.comms_key_master_id,
                        ).where(m.c.meter_number.in_(wanted[start_at : start_at + 500]))
                    )
                )
                found.append((rows, self._fingerprints(rows)))
        return found

    async def _raise_rx_floors(self, marks: Sequence[RxMark]) -> set[str]:
        """Each meter's replay window raised so every counter below the ledger's floor for
        its current key is refused (REPLAYED within 64 of it, TOO_OLD below). Never lowers
        a window; a window already at or past the floor is left as it is."""
        floors: dict[str, dict[bytes, int]] = {}
        for mark in marks:
            floors.setdefault(mark.meter_number, {})[mark.fingerprint] = mark.floor
        wanted = sorted(floors)
        moved: set[str] = set()
        for start_at in range(0, len(wanted), 500):
            async with self._store.begin() as conn:
                rows = list(
                    await conn.execute(
                        select(
                            m.c.meter_number,
                            m.c.replay_window,
                            m.c.comms_key_sealed,
                            m.c.comms_key_master_id,
                        )
                        .where(m.c.meter_number.in_(wanted[start_at : start_at + 500]))
                        .order_by(m.c.meter_number)
                        .with_for_update()
                    )
                )
                prints = self._fingerprints(rows)
                lifts = []
                for row in rows:
                    meter = str(row.meter_number)
                    floor = floors[meter].get(prints.get(meter, b""), 0)
                    highest = _window(bytes(row.replay_window)).highest
                    top = min(floor - 1, _COUNTER_MAX)
                    if top >= 0 and (highest is None or highest < top):
                        window = ReplayWindow(top, _FULL_BITMAP)
                        lifts.append({"b_meter": meter, "b_rx": top, "b_window": window.to_bytes()})
                if lifts:
                    await conn.execute(
                        update(m)
                        .where(m.c.meter_number == bindparam("b_meter"))
                        .values(rx_counter=bindparam("b_rx"), replay_window=bindparam("b_window")),
                        lifts,
                    )
                moved.update(str(lift["b_meter"]) for lift in lifts)
        return moved

    async def frame_counters(
        self, meter_number: str, *, conn: AsyncConnection | None = None
    ) -> FrameCounters:
        async with self._tx(conn) as tx:
            row = (
                await tx.execute(
                    select(m.c.tx_counter, m.c.rx_counter, m.c.replay_window).where(
                        m.c.meter_number == meter_number
                    )
                )
            ).first()
        if row is None:
            raise NotFound(f"meter {meter_number} is not registered")
        return FrameCounters(row.tx_counter, row.rx_counter, bytes(row.replay_window))

    async def save_rx_state(
        self,
        meter_number: str,
        *,
        expected: FrameCounters,
        rx_counter: int,
        replay_window: bytes,
        conn: AsyncConnection | None = None,
    ) -> bool:
        """Compare-and-set of the meter -> hub replay state: False if someone else moved it
        since `expected` was read (re-read and re-check the frame then)."""
        async with self._tx(conn) as tx:
            result = await tx.execute(
                update(m)
                .where(
                    m.c.meter_number == meter_number,
                    m.c.rx_counter == expected.rx_counter,
                    m.c.replay_window == expected.replay_window,
                )
                .values(rx_counter=rx_counter, replay_window=replay_window)
            )
            return result.rowcount == 1

    # -- SIMs --------------------------------------------------------------------------

    async def create_sim(self, sim: SimIn, *, conn: AsyncConnection | None = None) -> Sim:
        number = msisdn(sim.msisdn)
        check_iccid(sim.iccid)
        if not sim.operator.strip() or not sim.responsible_person.strip():
            raise RegistryError("a SIM needs its operator and responsible person")
        now = self._clock()
        async with self._tx(conn) as tx:
            clash = await tx.scalar(
                select(s.c.sim_id).where(or_(s.c.msisdn == number, s.c.iccid == sim.iccid))
            )
            if clash is not None:
                raise Conflict(f"a SIM with MSISDN {number} or ICCID {sim.iccid} exists")
            result = await tx.execute(
                insert(s)
                .values(
                    msisdn=number,
                    iccid=sim.iccid,
                    operator=sim.operator,
                    m2m=sim.m2m,
                    responsible_person=sim.responsible_person,
                    meter_number=None,
                    created_at=now,
                    updated_at=now,
                )
                .returning(s.c.sim_id)
            )
            sim_id = int(result.scalar_one())
            return await self._sim_by_id(tx, sim_id)

    async def get_sim(self, number: str) -> Sim:
        async with self._store.read() as conn:
            row = (await conn.execute(select(s).where(s.c.msisdn == msisdn(number)))).first()
        if row is None:
            raise NotFound(f"SIM {number} is not registered")
        return Sim.from_row(row)

    async def sim_of_meter(self, meter_number: str) -> Sim | None:
        async with self._store.read() as conn:
            row = (await conn.execute(select(s).where(s.c.meter_number == meter_number))).first()
        return None if row is None else Sim.from_row(row)

    async def _sim_by_id(self, conn: AsyncConnection, sim_id: int) -> Sim:
        row = (await conn.execute(select(s).where(s.c.sim_id == sim_id))).first()
        if row is None:
            raise NotFound(f"SIM #{sim_id} does not exist")
        return Sim.from_row(row)

    async def bind_sim(self, number: str, meter_number: str, *, actor: str) -> Sim:
        """First binding of a SIM to a meter that has none. Re-binding a meter that already
        has a SIM goes through request/approve_sim_swap."""
        number = msisdn(number)
        async with self._store.begin() as conn:
            await self._meter(conn, meter_number)
            current = await conn.scalar(select(s.c.msisdn).where(s.c.meter_number == meter_number))
            if current is not None:
                raise Conflict(
                    f"meter {meter_number} already has SIM {current}: request a SIM swap"
                )
            result = await conn.execute(
                update(s)
                .where(s.c.msisdn == number, s.c.meter_number.is_(None))
                .values(meter_number=meter_number, updated_at=self._clock())
                .returning(s.c.sim_id)
            )
            sim_id = result.scalar()
            if sim_id is None:
                bound = await conn.scalar(select(s.c.meter_number).where(s.c.msisdn == number))
                if bound is None:
                    raise NotFound(f"SIM {number} is not registered")
                raise Conflict(f"SIM {number} is already bound to meter {bound}")
            await self.audit(conn, actor, "sim.bind", "meter", meter_number, {"msisdn": number})
            return await self._sim_by_id(conn, int(sim_id))

    async def request_sim_swap(
        self, meter_number: str, new_msisdn: str, *, requested_by: str, reason: str | None = None
    ) -> SimSwap:
        """Ask to move the meter to another (registered, unbound) SIM; nothing is re-bound
        until someone else approves."""
        number = msisdn(new_msisdn)
        now = self._clock()
        async with self._store.begin() as conn:
            await self._meter(conn, meter_number)
            new = (await conn.execute(select(s).where(s.c.msisdn == number))).first()
            if new is None:
                raise NotFound(f"SIM {number} is not registered")
            if new.meter_number is not None:
                raise Conflict(f"SIM {number} is already bound to meter {new.meter_number}")
            pending = await conn.scalar(
                select(w.c.swap_id).where(
                    w.c.meter_number == meter_number, w.c.state == SimSwapState.REQUESTED.value
                )
            )
            if pending is not None:
                raise Conflict(f"meter {meter_number} already has SIM swap #{pending} pending")
            old_id = await conn.scalar(select(s.c.sim_id).where(s.c.meter_number == meter_number))
            result = await conn.execute(
                insert(w)
                .values(
                    meter_number=meter_number,
                    old_sim_id=old_id,
                    new_sim_id=new.sim_id,
                    state=SimSwapState.REQUESTED.value,
                    reason=reason,
                    requested_by=requested_by,
                    requested_at=now,
                )
                .returning(w.c.swap_id)
            )
            swap_id = int(result.scalar_one())
            await self.audit(
                conn,
                requested_by,
                "sim_swap.request",
                "meter",
                meter_number,
                {"swap_id": swap_id, "new_msisdn": number},
            )
            return await self._swap(conn, swap_id)

    async def _swap(self, conn: AsyncConnection, swap_id: int) -> SimSwap:
        row = (await conn.execute(select(w).where(w.c.swap_id == swap_id))).first()
        if row is None:
            raise NotFound(f"SIM swap #{swap_id} does not exist")
        return SimSwap.from_row(row)

    async def get_sim_swap(self, swap_id: int) -> SimSwap:
        async with self._store.read() as conn:
            return await self._swap(conn, swap_id)

    async def _decide(
        self, conn: AsyncConnection, swap_id: int, target: SimSwapState, by: str, note: str | None
    ) -> SimSwap:
        swap = await self._swap(conn, swap_id)
        SIM_SWAP_MACHINE.check(f"#{swap_id}", swap.state, target)
        result = await conn.execute(
            update(w)
            .where(w.c.swap_id == swap_id, w.c.state == SimSwapState.REQUESTED.value)
            .values(state=target.value, decided_by=by, decided_at=self._clock(), decision_note=note)
        )
        if result.rowcount != 1:  # decided concurrently
            SIM_SWAP_MACHINE.check(f"#{swap_id}", (await self._swap(conn, swap_id)).state, target)
        return swap

    async def approve_sim_swap(
        self, swap_id: int, *, approved_by: str, note: str | None = None
    ) -> SimSwap:
        """Approve and re-bind: the old SIM is unbound and the new one bound, atomically.
        Four eyes: the requester cannot approve their own request."""
        async with self._store.begin() as conn:
            swap = await self._swap(conn, swap_id)
            if swap.state is SimSwapState.REQUESTED and approved_by == swap.requested_by:
                raise RegistryError(
                    "a SIM swap must be approved by someone other than its requester"
                )
            swap = await self._decide(conn, swap_id, SimSwapState.APPROVED, approved_by, note)
            now = self._clock()
            await conn.execute(
                update(s)
                .where(s.c.meter_number == swap.meter_number)
                .values(meter_number=None, updated_at=now)
            )
            result = await conn.execute(
                update(s)
                .where(s.c.sim_id == swap.new_sim_id, s.c.meter_number.is_(None))
                .values(meter_number=swap.meter_number, updated_at=now)
            )
            if result.rowcount != 1:
                raise Conflict(f"the new SIM of swap #{swap_id} was bound elsewhere meanwhile")
            await self.audit(
                conn,
                approved_by,
                "sim_swap.approve",
                "meter",
                swap.meter_number,
                {"swap_id": swap_id},
            )
            return await self._swap(conn, swap_id)

    async def reject_sim_swap(
        self, swap_id: int, *, rejected_by: str, note: str | None = None
    ) -> SimSwap:
        async with self._store.begin() as conn:
            swap = await self._decide(conn, swap_id, SimSwapState.REJECTED, rejected_by, note)
            await self.audit(
                conn,
                rejected_by,
                "sim_swap.reject",
                "meter",
                swap.meter_number,
                {"swap_id": swap_id},
            )
            return await self._swap(conn, swap_id)

    # -- phones and PINs ---------------------------------------------------------------

    async def register_phone(
        self, number: str, customer_id: str, *, conn: AsyncConnection | None = None
    ) -> Phone:
        number = msisdn(number)
        now = self._clock()
        async with self._tx(conn) as tx:
            await self._customer(tx, customer_id)
            owner = await tx.scalar(select(p.c.customer_id).where(p.c.msisdn == number))
            if owner is not None:
                raise Conflict(f"phone {number} is already registered to customer {owner}")
            is_sim = await tx.scalar(select(s.c.sim_id).where(s.c.msisdn == number))
            if is_sim is not None:
                raise Conflict(f"{number} is a meter SIM, not a customer phone")
            await tx.execute(
                insert(p).values(
                    msisdn=number,
                    customer_id=customer_id,
                    pin_hash=None,
                    failed_attempts=0,
                    locked_until=None,
                    lockouts=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            return await self._phone(tx, number)

    async def get_phone(self, number: str) -> Phone:
        async with self._store.read() as conn:
            return await self._phone(conn, msisdn(number))

    async def phones_of(self, customer_id: str) -> list[Phone]:
        async with self._store.read() as conn:
            rows = await conn.execute(
                select(p).where(p.c.customer_id == customer_id).order_by(p.c.msisdn)
            )
            return [Phone.from_row(r) for r in rows]

    async def _phone(self, conn: AsyncConnection, number: str) -> Phone:
        row = (await conn.execute(select(p).where(p.c.msisdn == number))).first()
        if row is None:
            raise NotFound(f"phone {number} is not registered")
        return Phone.from_row(row)

    async def set_pin(self, number: str, pin: str, *, actor: str) -> Phone:
        """Set (or reset) the PIN; clears failed attempts and any lock-out."""
        number = msisdn(number)
        try:
            check_pin_format(pin, self._pin.length)
        except PinFormatError as error:
            raise RegistryError(str(error)) from None
        hashed = self._pin_key().hash(number, pin)  # an HMAC: no thread needed
        async with self._store.begin() as conn:
            result = await conn.execute(
                update(p)
                .where(p.c.msisdn == number)
                .values(
                    pin_hash=hashed,
                    failed_attempts=0,
                    locked_until=None,
                    lockouts=0,
                    updated_at=self._clock(),
                )
            )
            if result.rowcount != 1:
                raise NotFound(f"phone {number} is not registered")
            await self.audit(conn, actor, "pin.set", "phone", number)
            return await self._phone(conn, number)

    async def verify_pin(self, number: str, pin: str) -> PinResult:
        """Check a PIN with attempt counting: PinOk, PinWrong(attempts_left) or
        PinLocked(until). While locked, even the right PIN is refused. A stored hash that
        cannot be checked (another master key, damaged) is a RegistryError."""
        number = msisdn(number)
        now = self._clock()
        async with self._store.read() as conn:
            row = (
                await conn.execute(
                    select(p.c.pin_hash, p.c.locked_until, p.c.failed_attempts, p.c.lockouts).where(
                        p.c.msisdn == number
                    )
                )
            ).first()
        if row is None:
            raise NotFound(f"phone {number} is not registered")
        stored: str | None = row.pin_hash
        if stored is None:
            raise RegistryError(f"phone {number} has no PIN set")
        if row.locked_until is not None and row.locked_until > now:
            return PinLocked(row.locked_until)
        key = self._pin_key()
        legacy = is_scrypt(stored)
        try:
            if legacy:  # scrypt is deliberately slow: keep it off the event loop
                good = await asyncio.to_thread(verify_customer_pin, key, number, pin, stored)
            else:
                good = verify_customer_pin(key, number, pin, stored)
        except PinHashError as error:
            raise RegistryError(f"phone {number}: {error}") from None
        if (
            good
            and not legacy
            and row.failed_attempts == 0
            and row.locked_until is None
            and row.lockouts == 0
        ):
            # The purchase hot path: nothing to reset, so no write transaction at all. A lock
            # by wrong guesses racing this read is not seen, but this caller knew the PIN.
            return PinOk()
        not_locked = or_(p.c.locked_until.is_(None), p.c.locked_until <= now)
        async with self._store.begin() as conn:
            if good:
                values: dict[str, Any] = {"failed_attempts": 0, "locked_until": None, "lockouts": 0}
                if legacy:  # convert to the keyed hash while the PIN is at hand
                    values.update(pin_hash=key.hash(number, pin), updated_at=now)
                result = await conn.execute(
                    update(p)
                    # pin_hash unchanged: a PIN reset since the read must not be overwritten
                    # by the old PIN's hash, nor be passed with the old PIN.
                    .where(p.c.msisdn == number, not_locked, p.c.pin_hash == stored)
                    .values(**values)
                )
                if result.rowcount == 1:
                    return PinOk()
                until = await conn.scalar(select(p.c.locked_until).where(p.c.msisdn == number))
                if until is not None and until > now:
                    return PinLocked(until)
            else:
                # Count atomically so concurrent wrong guesses cannot share one attempt.
                result = await conn.execute(
                    update(p)
                    .where(p.c.msisdn == number, not_locked)
                    .values(failed_attempts=p.c.failed_attempts + 1)
                    .returning(p.c.failed_attempts)
                )
                failed = result.scalar()
                if failed is None:
                    return PinLocked(await self._locked_until(conn, number))
                if failed >= self._pin.max_attempts:
                    # Each lock-out in a row lasts twice as long as the last (capped).
                    lockouts = int(
                        await conn.scalar(
                            update(p)
                            .where(p.c.msisdn == number)
                            .values(lockouts=p.c.lockouts + 1)
                            .returning(p.c.lockouts)
                        )
                        or 1
                    )
                    minutes = min(
                        self._pin.lockout_minutes * 2 ** min(lockouts - 1, 20),
                        self._pin.lockout_max_minutes,
                    )
                    until = now + timedelta(minutes=minutes)
                    await conn.execute(
                        update(p)
                        .where(p.c.msisdn == number)
                        .values(failed_attempts=0, locked_until=until, updated_at=now)
                    )
                    await self.audit(
                        conn,
                        "system",
                        "pin.locked",
                        "phone",
                        number,
                        {"until": until.isoformat(), "lockouts": lockouts},
                    )
                    return PinLocked(until, lockouts=lockouts, just_locked=True)
                return PinWrong(self._pin.max_attempts - int(failed))
        # Reached only when the PIN was reset (or the phone removed) between the read and the
        # update: judge the PIN afresh against what is stored now.
        return await self.verify_pin(number, pin)

    async def verify_pins(
        self, attempts: Sequence[tuple[str, str]]
    ) -> list[PinResult | NotFound | RegistryError]:
        """`verify_pin` for many phones (each at most once), in order: one read for all;
        the common cases (a correct keyed PIN with nothing to reset, a phone locked out)
        decided from it with no write, every other one by `verify_pin` itself (which counts
        a wrong guess, resets, converts an old hash). Errors are returned, not raised."""
        now = self._clock()
        numbers: list[str | None] = []
        for number, _ in attempts:
            try:
                numbers.append(msisdn(number))
            except RegistryError:
                numbers.append(None)
        known = sorted({n for n in numbers if n is not None})
        rows: dict[str, Any] = {}
        async with self._store.read() as conn:
            for start_at in range(0, len(known), 500):
                for r in await conn.execute(
                    select(
                        p.c.msisdn,
                        p.c.pin_hash,
                        p.c.locked_until,
                        p.c.failed_attempts,
                        p.c.lockouts,
                    ).where(p.c.msisdn.in_(known[start_at : start_at + 500]))
                ):
                    rows[r.msisdn] = r
        key = self._pin_key()
        results: list[PinResult | NotFound | RegistryError] = []
        for (raw, pin), normal in zip(attempts, numbers, strict=True):
            row = rows.get(normal) if normal is not None else None
            if row is not None and row.pin_hash is not None and not is_scrypt(row.pin_hash):
                if row.locked_until is not None and row.locked_until > now:
                    results.append(PinLocked(row.locked_until))
                    continue
                if row.failed_attempts == 0 and row.locked_until is None and row.lockouts == 0:
                    try:
                        good = verify_customer_pin(key, row.msisdn, pin, row.pin_hash)
                    except PinHashError as error:
                        results.append(RegistryError(f"phone {row.msisdn}: {error}"))
                        continue
                    if good:
                        results.append(PinOk())
                        continue
            try:
                results.append(await self.verify_pin(raw, pin))
            except (NotFound, RegistryError) as error:
                results.append(error)
        return results

    async def _locked_until(self, conn: AsyncConnection, number: str) -> datetime:
        until = await conn.scalar(select(p.c.locked_until).where(p.c.msisdn == number))
        assert until is not None
        return until  # type: ignore[no-any-return]

    # -- sender lookup -----------------------------------------------------------------

    async def resolve_sender(self, number: str) -> Sender | None:
        """Who an SMS came from: a meter's bound SIM, a registered phone, or None."""
        try:
            number = normalise(number)
        except MsisdnError:
            return None
        async with self._store.read() as conn:
            meter = (
                await conn.execute(
                    select(m.c.meter_number, m.c.customer_id)
                    .join(s, s.c.meter_number == m.c.meter_number)
                    .where(s.c.msisdn == number)
                )
            ).first()
            if meter is not None:
                return SenderMeter(meter.meter_number, meter.customer_id)
            owner = await conn.scalar(select(p.c.customer_id).where(p.c.msisdn == number))
        return None if owner is None else SenderCustomer(owner, number)

    async def identify_senders(self, numbers: Collection[str]) -> dict[str, Identified]:
        """`resolve_sender` and, for meters, `comms_key` for a whole batch of SMS senders
        in one read transaction of two queries (the inbound hot path). Keyed by each
        number as given; numbers that are not valid MSISDNs are left out."""
        normal: dict[str, str] = {}
        for number in numbers:
            try:
                normal[number] = normalise(number)
            except MsisdnError:
                continue
        wanted = sorted(set(normal.values()))
        found: dict[str, Identified] = {}
        if not wanted:
            return {}
        async with self._store.read() as conn:
            rows = await conn.execute(
                select(
                    s.c.msisdn,
                    m.c.meter_number,
                    m.c.customer_id,
                    m.c.comms_key_sealed,
                    m.c.comms_key_master_id,
                    m.c.comms_key_id,
                )
                .join(s, s.c.meter_number == m.c.meter_number)
                .where(s.c.msisdn.in_(wanted))
            )
            for row in rows:
                found[row.msisdn] = self._identified_meter(row)
            rest = [n for n in wanted if n not in found]
            if rest:
                phones = await conn.execute(
                    select(p.c.msisdn, p.c.customer_id).where(p.c.msisdn.in_(rest))
                )
                for number, owner in phones:
                    found[number] = Identified(SenderCustomer(owner, number))
        return {given: found[n] for given, n in normal.items() if n in found}

    def _identified_meter(self, row: Any) -> Identified:
        meter = SenderMeter(row.meter_number, row.customer_id)
        master = self.require_master_key()
        if row.comms_key_sealed is None:
            return Identified(meter, None, f"meter {meter.meter_number} has no comms key")
        if row.comms_key_master_id != master.key_id:
            return Identified(
                meter,
                None,
                f"comms key of meter {meter.meter_number} was sealed under "
                f"{row.comms_key_master_id}, not the configured {master.key_id}",
            )
        try:
            key = self._open_comms_key(master, bytes(row.comms_key_sealed), meter.meter_number)
        except SealError as error:
            return Identified(meter, None, str(error))
        return Identified(meter, CommsKey(meter.meter_number, row.comms_key_id, key))

    def _open_comms_key(self, master: MasterKey, sealed: bytes, meter_number: str) -> bytes:
        memo = meter_number.encode() + b"\x00" + sealed
        key = self._opened.get(memo)
        if key is None:
            key = open_sealed(master, sealed, aad=meter_number)
            self._opened[memo] = key
            if len(self._opened) > _OPENED_KEYS:
                self._opened.popitem(last=False)
        else:
            self._opened.move_to_end(memo)
        return key

    async def counts(self) -> dict[str, int]:
        async with self._store.read() as conn:
            result = {}
            for name, table in (("customers", c), ("meters", m), ("sims", s), ("phones", p)):
                result[name] = int(await conn.scalar(select(func.count()).select_from(table)) or 0)
            return result


__all__ = ["COMMS_KEY_BYTES", "Registry", "check_customer_id", "check_meter_number", "msisdn"]

"""Small builders shared by the store/registry tests."""

from __future__ import annotations

from operator_data.registry import CustomerIn, MeterIn, Registry, SimIn


def customer(n: int = 1) -> CustomerIn:
    return CustomerIn(f"{5300000000 + n:012d}", f"Pelanggan {n}", "R1", 1300)


def meter(n: int = 1, customer_n: int = 1) -> MeterIn:
    return MeterIn(
        f"{14000000000 + n:011d}", customer(customer_n).customer_id, "123456", "01", 1, 2
    )


def sim(n: int = 1) -> SimIn:
    return SimIn(
        msisdn=f"0811{2000000 + n:07d}",
        iccid=f"8962{10_000_000_000_000 + n:015d}",
        operator="Telkomsel",
        responsible_person="Budi Santoso, PT Operator Data",
    )


async def registered_meter(registry: Registry, n: int = 1, *, key: bytes | None = None) -> str:
    await registry.create_customer(customer(n))
    made = await registry.create_meter(
        meter(n, n), comms_key=key, comms_key_id="k1" if key else None
    )
    return made.meter_number

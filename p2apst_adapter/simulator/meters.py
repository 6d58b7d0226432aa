"""The simulator's customer register: meters, their customers and their STS keys."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from firmware_protocol import sts


@dataclass(frozen=True, slots=True)
class SimMeter:
    meter_number: str  # 11 digits, also the STS decoder reference number
    customer_id: str  # 12 digits
    customer_name: str
    tariff: str  # e.g. "R1"
    power_va: int
    key_data: sts.KeyData
    vending_key: int
    base_date: sts.BaseDate = sts.BaseDate.Y2014
    blocked: bool = False

    def decoder_key(self) -> int:
        return sts.derive_decoder_key(self.vending_key, self.key_data)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SimMeter:
        """One meter of a `--meters` file (see `load_meters`)."""
        meter_number = str(data["meter_number"])
        key = data.get("sts", {})
        return cls(
            meter_number=meter_number,
            customer_id=str(data["customer_id"]),
            customer_name=str(data["customer_name"]),
            tariff=str(data.get("tariff", "R1")),
            power_va=int(data.get("power_va", 1300)),
            key_data=sts.KeyData(
                key_type=int(key.get("key_type", 2)),
                supply_group_code=str(key.get("supply_group_code", "123456")),
                tariff_index=str(key.get("tariff_index", "01")),
                key_revision_number=int(key.get("key_revision_number", 1)),
                iin=str(key.get("iin", "600727")),
                drn=meter_number,
            ),
            vending_key=sts.parse_key_hex(str(key.get("vending_key", "abababababababab"))),
            base_date=sts.BaseDate.parse(key.get("base_date", 2014)),
            blocked=bool(data.get("blocked", False)),
        )


def load_meters(path: Path) -> list[SimMeter]:
    """A JSON list of meters:
    `[{"meter_number": "14234567890", "customer_id": "512345678901", "customer_name": "...",
       "tariff": "R1", "power_va": 1300, "sts": {"vending_key": "<16 hex>", "key_type": 2,
       "supply_group_code": "123456", "tariff_index": "01", "key_revision_number": 1,
       "iin": "600727", "base_date": 2014}}, ...]`"""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of meters")
    return [SimMeter.from_json(item) for item in data]


def demo_meters(count: int = 5, first: int = 14000000001) -> list[SimMeter]:
    """Deterministic demo customers, all under the STS test vending key."""
    names = ("BUDI SANTOSO", "SITI RAHAYU", "AGUS WIJAYA", "DEWI LESTARI", "I MADE SUARTA")
    powers = (900, 1300, 2200, 3500, 5500)
    meters = []
    for index in range(count):
        number = f"{first + index:011d}"
        meters.append(
            SimMeter.from_json(
                {
                    "meter_number": number,
                    "customer_id": f"5123{index + 1:08d}",
                    "customer_name": names[index % len(names)],
                    "tariff": "R1" if powers[index % len(powers)] <= 2200 else "R2",
                    "power_va": powers[index % len(powers)],
                }
            )
        )
    return meters


class MeterRegistry:
    def __init__(self, meters: Iterable[SimMeter]) -> None:
        self._by_meter = {meter.meter_number: meter for meter in meters}
        self._by_customer = {meter.customer_id: meter for meter in self._by_meter.values()}

    def by_meter(self, meter_number: str) -> SimMeter | None:
        return self._by_meter.get(meter_number)

    def by_customer(self, customer_id: str) -> SimMeter | None:
        return self._by_customer.get(customer_id)

    def all(self) -> Sequence[SimMeter]:
        return tuple(self._by_meter.values())

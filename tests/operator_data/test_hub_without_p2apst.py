"""A hub configured without a P2APST link refuses purchases with a clear reply."""

from __future__ import annotations

from pathlib import Path

import pytest

from operator_data.store import Store, schema
from tests.operator_data.hub_support import PIN, running_rig


@pytest.mark.parametrize("backend", ["sqlite"])  # the reply does not depend on the database
async def test_a_purchase_is_refused_when_no_p2apst_is_configured(
    store: Store, tmp_path: Path
) -> None:
    async with running_rig(store, tmp_path, p2apst=False) as rig:
        rig.phone.text(f"BELI 100rb {PIN}")
        await rig.until(rig.inbox_has(1))
        (answer,) = rig.phone.inbox
        assert answer.startswith("Pembelian Rp100.000 gagal: layanan pembelian belum tersedia")
        assert await rig.count(schema.transactions) == 0

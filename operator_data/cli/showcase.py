"""What `scripts/demo` runs until `pintar demo` exists: the protocol tools on real vectors.

It derives the published STS decoder key, issues a token for a purchase, decodes it the way a
meter does, and shows what each of the `pintar` inspection tools that exist so far prints.
"""

from __future__ import annotations

import sys
from datetime import datetime
from decimal import Decimal

from firmware_protocol import sts

_VENDING_KEY = 0xABABABABABABABAB
_KEY_DATA = sts.KeyData(
    key_type=2,
    supply_group_code="123456",
    tariff_index="01",
    key_revision_number=1,
    iin="600727",
    drn="00000000000",
)


def main() -> int:
    out = sys.stdout.write
    decoder_key = sts.derive_decoder_key(_VENDING_KEY, _KEY_DATA)
    out("Listrik Pintar Operator Data: protocol showcase (the full demo is not built yet)\n\n")
    out(f"DKGA02 decoder key for meter {_KEY_DATA.drn}: {decoder_key:016x}\n")
    base = sts.BaseDate.Y2014
    issued_at = datetime.now().replace(second=0, microsecond=0)
    for kwh in (Decimal("20"), Decimal("2000.0")):
        fields = sts.credit(0, 7, issued_at, kwh, base)
        token = sts.encode(fields, decoder_key)
        decoded = sts.decode(token, decoder_key)
        grouped = " ".join(token[i : i + 4] for i in range(0, 20, 4))
        out(
            f"purchase of {kwh} kWh -> token {grouped} -> meter reads "
            f"{decoded.fields.amount_kwh} kWh, TID {decoded.fields.tid}, "
            f"CRC {'ok' if decoded.crc_ok else 'FAILED'}\n"
        )
    wrong = sts.decode(token, decoder_key ^ 0x1)
    out(f"the same token on a meter with another key: CRC {'ok' if wrong.crc_ok else 'fails'}\n")
    out("\nTry: .venv/bin/pintar --help, pintar sts decode --decoder-key KEY TOKEN\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

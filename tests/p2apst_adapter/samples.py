"""Sample messages written by hand from the dialect tables in docs/p2apst.md.

Each is the ASCII message without framing; the comments show how it was put together.
"""

from __future__ import annotations

PURCHASE_48 = (
    "3250001"  # switcher ID (7)
    "14234567890"  # meter number (11)
    "512345678901"  # customer ID (12)
    "0"  # flag: looked up by meter number
    "0ABCDEF0123456789ABCDEF012345678"  # PLN reference (32)
    "SWREF000000000000000000000000001"  # switcher reference (32)
    "BUDI SANTOSO             "  # customer name (25)
    "R1  "  # tariff (4)
    "000001300"  # power, VA (9)
    "00000002500"  # admin fee: minor unit 0 + 10 digits = Rp 2,500
    "0"  # buying option
)

#: 2200 purchase request, Rp 200,000 for meter 14234567890.
PURCHASE_REQUEST = (
    "2200"
    "5030004180810000"  # bitmap: 2 4 11 12 26 32 33 41 48
    "0599502"  # 2: LL 05, prepaid
    "3600000000200000"  # 4: IDR, minor unit 0, 000000200000
    "000000000123"  # 11: STAN
    "20240315103000"  # 12: local date-time
    "6021"  # 26: merchant category
    "074510017"  # 32: LL 07, bank code
    "073250001"  # 33: LL 07, switcher ID
    "TERM000000000001"  # 41: terminal ID
    "145" + PURCHASE_48  # 48: LLL 145
)

PURCHASE_RESPONSE_48 = (
    "3250001"
    "14234567890"
    "512345678901"
    "0"
    "0ABCDEF0123456789ABCDEF012345678"
    "SWREF000000000000000000000000001"
    "1A2B3C4D"  # vending receipt number (8)
    "BUDI SANTOSO             "
    "R1  "
    "000001300"
    "0"  # buying option
    "00000002500"  # admin charge Rp 2,500
    "00000000000"  # stamp duty
    "00000000000"  # VAT
    "00000005752"  # PPJ Rp 5,752
    "00000000000"  # instalment
    "0000000191748"  # power purchase: minor unit 0 + 12 digits = Rp 191,748
    "20000013273"  # kWh: minor unit 2 -> 132.73
    "12345678901234567890"  # token (20)
)

PRIVATE_62 = (
    "53"  # distribution code
    "53111"  # service unit
    "0361123456     "  # service-unit phone (15)
    "00000"  # max kWh (none)
    "1"  # one unsold amount follows
    "00000001000"  # unsold amount Rp 1,000
)

#: 2210 purchase response with a token.
PURCHASE_RESPONSE = (
    "2210"
    "5032004182810004"  # bitmap: 2 4 11 12 15 26 32 33 39 41 48 62
    "0599502"
    "3600000000200000"
    "000000000123"
    "20240315103000"
    "20240315"  # 15: settlement date
    "6021"
    "074510017"
    "073250001"
    "0000"  # 39: success
    "TERM000000000001"
    + "241"  # 48: LLL 241
    + PURCHASE_RESPONSE_48
    + "039"  # 62: LLL 039
    + PRIVATE_62
)

#: 2800 sign-on: secondary bitmap present for bit 70.
SIGN_ON = (
    "2800"
    "8020000000000000"  # primary bitmap: 1 (secondary follows), 11
    "0400000000000000"  # secondary bitmap: 70
    "000000000001"  # 11
    "001"  # 70: sign-on
)

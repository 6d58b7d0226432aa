"""`pintar iso8583 decode` on the hand-built sample messages."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from operator_data.cli.main import app
from tests.p2apst_adapter import samples

runner = CliRunner()


def run(*args: str) -> tuple[int, dict[str, object] | None, str]:
    result = runner.invoke(app, list(args))
    document = json.loads(result.stdout) if result.exit_code == 0 else None
    return result.exit_code, document, result.stderr


def test_decode_raw_purchase_request() -> None:
    code, doc, _ = run("iso8583", "decode", "--raw", samples.PURCHASE_REQUEST)
    assert code == 0 and doc is not None
    assert doc["framing"] == "none"
    assert doc["mti"] == "2200"
    assert doc["mti_name"] == "purchase_request"
    assert doc["fields"]["11"] == "000000000123"  # type: ignore[index]
    assert doc["amount"] == {"currency": "360", "amount": "200000"}
    bit48 = doc["bit48"]
    assert isinstance(bit48, dict)
    assert bit48["meter_number"] == "14234567890"
    assert bit48["customer_id"] == "512345678901"
    assert bit48["pln_reference"] == "0ABCDEF0123456789ABCDEF012345678"
    assert bit48["switcher_reference"] == "SWREF000000000000000000000000001"
    assert bit48["customer_name"] == "BUDI SANTOSO"
    assert bit48["tariff"] == "R1"
    assert bit48["power_va"] == 1300
    assert bit48["admin_fee"] == "2500"


def test_decode_hex_with_length_prefix() -> None:
    body = samples.PURCHASE_RESPONSE.encode()
    framed = len(body).to_bytes(2, "big") + body
    code, doc, _ = run("iso8583", "decode", framed.hex())
    assert code == 0 and doc is not None
    assert doc["framing"] == "length-prefix"
    assert doc["response"] == {
        "code": "0000",
        "meaning": "success",
        "customer_text": "Transaksi berhasil.",
    }
    bit48 = doc["bit48"]
    assert isinstance(bit48, dict)
    assert bit48["token"] == "12345678901234567890"
    assert bit48["kwh"] == "132.73"
    assert bit48["power_purchase"] == "191748"
    assert doc["bit62"] == {
        "distribution_code": "53",
        "service_unit": "53111",
        "service_unit_phone": "0361123456",
        "max_kwh": 0,
        "total_repeat": 1,
        "unsold_amounts": ["1000"],
    }


def test_decode_hex_without_framing() -> None:
    code, doc, _ = run("iso8583", "decode", samples.SIGN_ON.encode().hex())
    assert code == 0 and doc is not None
    assert doc["framing"] == "none"
    assert doc["fields"] == {"11": "000000000001", "70": "001"}


def test_bad_input_exits_2_with_the_field() -> None:
    code, _, err = run("iso8583", "decode", "--raw", samples.PURCHASE_REQUEST[:30])
    assert code == 2
    assert "field 4" in err
    code, _, err = run("iso8583", "decode", "zz")
    assert code == 2 and "not hex" in err
    code, _, _ = run("iso8583", "decode")
    assert code == 2


def test_a_bitmap_naming_an_unknown_field_is_an_error_not_a_traceback() -> None:
    from tests.p2apst_adapter.test_dialect_properties import BITMAP_BEYOND_THE_FIELDS

    code, _, err = run("iso8583", "decode", BITMAP_BEYOND_THE_FIELDS.hex())
    assert code == 2
    assert "field 172" in err and "Traceback" not in err

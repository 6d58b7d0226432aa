"""`pintar sts` as a user runs it: JSON on stdout, exit 2 with a message on bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from operator_data.cli.main import app

runner = CliRunner()
KEY = "e653341f9d5bf36f"


def run(*args: str) -> tuple[int, dict[str, object] | None, str]:
    result = runner.invoke(app, list(args))
    document = json.loads(result.stdout) if result.exit_code == 0 else None
    return result.exit_code, document, result.stderr


def test_derive_key() -> None:
    code, doc, _ = run(
        "sts", "derive-key", "--vending-key", "abababababababab", "--key-type", "2",
        "--sgc", "123456", "--tariff-index", "01", "--krn", "1", "--iin", "600727",
        "--drn", "00000000000",
    )  # fmt: skip
    assert code == 0
    assert doc == {"decoder_key": KEY}


def test_encode_then_decode() -> None:
    code, doc, _ = run(
        "sts", "encode", "--decoder-key", KEY, "--class", "0", "--subclass", "0", "--rnd", "5",
        "--issued-at", "2004-04-01T00:30", "--amount-kwh", "25.6",
    )  # fmt: skip
    assert code == 0 and doc == {"token": "26456622012185850752"}
    code, doc, _ = run("sts", "decode", "--decoder-key", KEY, "26456622012185850752")
    assert code == 0
    assert doc == {
        "class": 0, "subclass": 0, "rnd": 5, "tid": 5915550,
        "issued_at": "2004-04-01T00:30", "amount_kwh": 25.6, "crc_ok": True,
    }  # fmt: skip


def test_decode_management_token_with_base_date() -> None:
    code, doc, _ = run(
        "sts", "decode", "--decoder-key", KEY, "--base-date", "1993", "37037300014464855694"
    )
    assert code == 0 and doc is not None
    assert doc["register"] == 0 and doc["class"] == 2 and doc["subclass"] == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("decode", "--decoder-key", KEY, "1234"), "20 digits"),
        (("decode", "--decoder-key", "zz", "26456622012185850752"), "16 hex"),
        (("decode", "--decoder-key", KEY, "--base-date", "2000", "26456622012185850752"), "1993"),
        (("encode", "--decoder-key", KEY, "--class", "0", "--subclass", "0", "--rnd", "5",
          "--issued-at", "yesterday", "--amount-kwh", "1"), "ISO 8601"),
        (("encode", "--decoder-key", KEY, "--class", "0", "--subclass", "0", "--rnd", "5",
          "--issued-at", "2004-04-01T00:30", "--register", "1"), "--amount-kwh"),
        (("encode", "--decoder-key", KEY, "--class", "1", "--subclass", "0", "--rnd", "5",
          "--issued-at", "2004-04-01T00:30", "--register", "1"), "not supported"),
        (("encode", "--decoder-key", KEY, "--class", "0", "--subclass", "16", "--rnd", "5",
          "--issued-at", "2004-04-01T00:30", "--amount-kwh", "1"), "subclass"),
        (("derive-key", "--vending-key", "abababababababab", "--key-type", "2", "--sgc", "12",
          "--tariff-index", "01", "--krn", "1", "--iin", "600727", "--drn", "00000000000"),
         "supply_group_code"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_a_clear_message(args: tuple[str, ...], message: str) -> None:
    code, _, stderr = run("sts", *args)
    assert code == 2
    assert message in stderr

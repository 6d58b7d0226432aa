"""Every published STS vector, in both directions: the project's copy of the shared vectors
(tests/vectors/sts.json, its source named in the file), so a clone alone passes."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from firmware_protocol import sts

VECTORS_PATH = Path(__file__).resolve().parents[1] / "vectors" / "sts.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text())
KEY_DATA = VECTORS["key_derivation"]
BASE = sts.BaseDate.parse(VECTORS["base_date"][:4])
DECODER_KEY = int(KEY_DATA["decoder_key_hex"], 16)


def test_dkga02_reproduces_the_published_decoder_key() -> None:
    data = sts.KeyData(
        key_type=KEY_DATA["key_type"],
        supply_group_code=KEY_DATA["supply_group_code"],
        tariff_index=KEY_DATA["tariff_index"],
        key_revision_number=KEY_DATA["key_revision_number"],
        iin=KEY_DATA["iin"],
        drn=KEY_DATA["drn"],
    )
    derived = sts.derive_decoder_key(int(KEY_DATA["vending_key_hex"], 16), data)
    assert f"{derived:016x}" == KEY_DATA["decoder_key_hex"]


def _fields(vector: dict[str, Any]) -> sts.TokenFields:
    issued_at = datetime.fromisoformat(vector["issued_at"])
    if vector["class"] == 0:
        kwh = Decimal(str(vector["amount_kwh"]))
        return sts.credit(vector["subclass"], vector["rnd"], issued_at, kwh, BASE)
    return sts.management(vector["subclass"], vector["rnd"], issued_at, vector["register"], BASE)


@pytest.mark.parametrize("vector", VECTORS["tokens"], ids=lambda v: v["token"])
def test_encoding_reproduces_the_published_token(vector: dict[str, Any]) -> None:
    assert sts.encode(_fields(vector), DECODER_KEY) == vector["token"]


@pytest.mark.parametrize("vector", VECTORS["tokens"], ids=lambda v: v["token"])
def test_decoding_reproduces_the_published_fields(vector: dict[str, Any]) -> None:
    decoded = sts.decode(vector["token"], DECODER_KEY)
    fields = decoded.fields
    assert decoded.crc_ok
    assert int(fields.token_class) == vector["class"]
    assert fields.subclass == vector["subclass"]
    assert fields.rnd == vector["rnd"]
    assert fields.issued_at(BASE) == datetime.fromisoformat(vector["issued_at"])
    if vector["class"] == 0:
        assert fields.amount_kwh == Decimal(str(vector["amount_kwh"]))
    else:
        assert fields.register == vector["register"]
    assert sts.token_class_of(vector["token"]) == vector["class"]


def test_a_wrong_key_fails_the_crc_instead_of_raising() -> None:
    token = VECTORS["tokens"][1]["token"]
    assert not sts.decode(token, DECODER_KEY ^ 1).crc_ok


def test_a_typo_fails_the_crc() -> None:
    token = VECTORS["tokens"][1]["token"]
    typo = token[:-1] + str((int(token[-1]) + 1) % 10)
    assert not sts.decode(typo, DECODER_KEY).crc_ok

"""Dialect files: the shipped default, per-switcher copies, and the faults they are refused for."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from operator_data.settings import P2apstSettings
from p2apst_adapter import dialect
from p2apst_adapter.dialect import DialectFileError, IsoError, Kind, SubKind, load_dialect

CORPUS = Path(__file__).parent / "corpus"
REAL_2210 = CORPUS / "pedami-prepaid-2210-purchase-response.iso"


def write(tmp_path: Path, text: str, name: str = "switcher.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def edited(old: str, new: str) -> str:
    text = dialect.default_dialect_text()
    assert text.count(old) == 1, old
    return text.replace(old, new)


def test_the_shipped_file_is_the_default_dialect(tmp_path: Path) -> None:
    loaded = load_dialect(write(tmp_path, dialect.default_dialect_text()))
    assert dataclasses.replace(loaded, source="") == dataclasses.replace(dialect.P2APST, source="")
    assert dialect.P2APST.name == "pln-default"
    assert dialect.P2APST.field(63) is not None and dialect.P2APST.field(63).encoding == "latin-1"  # type: ignore[union-attr]
    assert dialect.PURCHASE_RESPONSE.width == 241


def test_a_json_file_says_the_same(tmp_path: Path) -> None:
    document = tomllib.loads(dialect.default_dialect_text())
    loaded = load_dialect(write(tmp_path, json.dumps(document), "switcher.json"))
    assert loaded.layouts == dialect.P2APST.layouts
    assert loaded.fields == dialect.P2APST.fields
    assert loaded.bit48 == dialect.P2APST.bit48


def test_a_switcher_file_changes_how_bit_48_is_read(tmp_path: Path) -> None:
    # An operator whose switcher sends digits-only IDs pins that down in its own file.
    strict = load_dialect(
        write(
            tmp_path,
            edited(
                'switcher_id = { width = 7, kind = "text" }',
                'switcher_id = { width = 7, kind = "digits" }',
            ),
        )
    )
    message = dialect.decode(REAL_2210.read_bytes(), strict)
    with pytest.raises(IsoError) as caught:
        strict.bit48_layout(message.mti, message.fields[48]).decode(message.fields[48])
    assert (caught.value.field, caught.value.offset) == ("48.switcher_id", 0)


def test_a_counted_strict_bit_62_reproduces_the_old_refusal(tmp_path: Path) -> None:
    counted = load_dialect(
        write(
            tmp_path,
            edited(
                "bit = 62\nlenient = true\n",
                'bit = 62\ncount = "total_repeat"\n',
            ),
        )
    )
    layout = counted.layout("private data 2")
    assert not layout.lenient and layout.count == "total_repeat"
    message = dialect.decode(REAL_2210.read_bytes(), counted)
    with pytest.raises(IsoError, match="11 characters too many") as caught:
        layout.decode(message.fields[62])
    assert (caught.value.field, caught.value.offset) == ("62", 28)


def test_the_client_bits_can_be_widened_per_switcher(tmp_path: Path) -> None:
    wide = load_dialect(write(tmp_path, edited('bit = 33\nkind = "n"', 'bit = 33\nkind = "ans"')))
    assert wide.field(33).kind is Kind.TEXT  # type: ignore[union-attr]
    message = dialect.IsoMessage("2800", {11: "000000000001", 33: "ST145S3", 70: "001"})
    assert dialect.decode(dialect.encode(message, wide), wide) == message
    with pytest.raises(IsoError) as caught:
        dialect.encode(message)
    assert caught.value.field == "33"


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        ("bit = 62\nlenient = true\n", "bit = 62\n", "", None),  # control: loads
        (
            'name = "purchase response"\nbit = 48\n',
            'name = "purchase response"\nbit = 48\nlenient = true\n',
            "layout[4].lenient",
            "carries money or tokens",
        ),
        (
            'token = { width = 20, kind = "digits" }',
            'token = { width = 20, kind = "text" }',
            "layout[4]",
            "token must stay digits",
        ),
        (
            '{ name = "kwh", width = 11, kind = "money", minor = 2 }',
            '{ name = "kwh", width = 11, kind = "number" }',
            "layout[4]",
            "kwh must stay money",
        ),
        (
            'admin_fee = { width = 11, kind = "money" }',
            'admin_fee = { width = 11, kind = "mony" }',
            "subfield.admin_fee.kind",
            "must be one of",
        ),
        (
            'meter_number = { width = 11, kind = "digits" }',
            'meter_number = { width = 0, kind = "digits" }',
            "subfield.meter_number.width",
            "1..999",
        ),
        (
            '2100 = ["inquiry request"]',
            '2100 = ["inquiry requests"]',
            "bit48.2100",
            "not a bit 48 layout",
        ),
        ('2100 = ["inquiry request"]', '21O0 = ["inquiry request"]', "bit48.21O0", "4-digit"),
        (
            'bit = 4\nkind = "n"',
            'bit = 4\nkind = "ans"',
            "field",
            "bit 4 must be listed with kind n",
        ),
        ("bit = 15\n", "bit = 12\n", "field", "bit 12 twice"),
        ('encoding = "latin-1"', 'encoding = "klingon"', "field[13].encoding", "unknown encoding"),
        (
            'bit = 70\nkind = "n"\n',
            'bit = 70\nkind = "n"\nlen = 1\n',
            "field[14]",
            "unknown key 'len'",
        ),
        (
            'bit = 48\nkind = "ans"\nlength = "lllvar"',
            'bit = 48\nkind = "ans"\nlength = "llvar"',
            "field[10].max_len",
            "1..99",
        ),
        (
            'base = "inquiry response"',
            'base = "inquiry answer"',
            "layout[3].base",
            "no earlier layout",
        ),
        (
            'name = "token report"',
            'name = "token reports"',
            "layout",
            "needs a layout named 'token report'",
        ),
        (
            'fields = ["buying_option"]',
            'fields = ["buying_option", "flag"]',
            "layout[3].fields",
            "'flag' appears twice",
        ),
        (
            '{ name = "vat", width = 11, kind = "money" }',
            '{ name = "vat", width = 11, kind = "money", minor = 10 }',
            "layout[4].fields[13].minor",
            "0..9",
        ),
    ],
)
def test_faulty_files_are_refused_naming_the_key(
    tmp_path: Path, old: str, new: str, key: str, words: str | None
) -> None:
    path = write(tmp_path, edited(old, new))
    if words is None:
        load_dialect(path)
        return
    with pytest.raises(DialectFileError) as caught:
        load_dialect(path)
    assert caught.value.key == key
    assert words in caught.value.problem
    assert str(path) in str(caught.value)


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DialectFileError, match="cannot read it"):
        load_dialect(tmp_path / "missing.toml")
    with pytest.raises(DialectFileError, match="not valid toml"):
        load_dialect(write(tmp_path, "name = ["))
    with pytest.raises(DialectFileError, match="not valid json"):
        load_dialect(write(tmp_path, "{", "d.json"))
    with pytest.raises(DialectFileError, match=r"\.toml or \.json"):
        load_dialect(write(tmp_path, "", "d.yaml"))
    with pytest.raises(DialectFileError, match="expected a table"):
        load_dialect(write(tmp_path, "[]", "list.json"))


def test_the_setting_loads_the_file_at_start_up(tmp_path: Path) -> None:
    assert P2apstSettings().dialect() is dialect.P2APST
    path = write(tmp_path, edited('name = "pln-default"', 'name = "st145"'))
    chosen = P2apstSettings(dialect_file=path).dialect()
    assert chosen.name == "st145"
    assert chosen.layout("purchase response").fields[-1].kind is SubKind.DIGITS
    bad = write(
        tmp_path,
        edited('token = { width = 20, kind = "digits" }', 'token = { width = 20, kind = "text" }'),
        "bad.toml",
    )
    with pytest.raises(ValidationError) as caught:
        P2apstSettings(dialect_file=bad)
    assert "token must stay digits" in str(caught.value)
    assert "dialect_file" in str(caught.value)

"""`pintar sts`: derive decoder keys, encode and decode 20-digit STS tokens."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

from firmware_protocol import sts
from operator_data.cli.output import emit, fail

app = typer.Typer(
    help="STS prepaid tokens (IEC 62055-41): DKGA02 keys, EA07 tokens.", no_args_is_help=True
)

BaseDateOption = Annotated[
    str, typer.Option("--base-date", help="STS base date of the meter: 1993, 2014 or 2035.")
]


def _key(text: str, name: str) -> int:
    try:
        return sts.parse_key_hex(text, name)
    except sts.StsError as error:
        fail(str(error))


def _base(text: str) -> sts.BaseDate:
    try:
        return sts.BaseDate.parse(text)
    except sts.StsError as error:
        fail(str(error))


@app.command("derive-key")
def derive_key(
    vending_key: Annotated[str, typer.Option(help="Vending key, 16 hex digits.")],
    key_type: Annotated[int, typer.Option(help="Key type KT, one digit.")],
    sgc: Annotated[str, typer.Option(help="Supply group code, 6 digits.")],
    tariff_index: Annotated[str, typer.Option(help="Tariff index, 2 digits.")],
    krn: Annotated[int, typer.Option(help="Key revision number, one digit.")],
    iin: Annotated[str, typer.Option(help="Issuer identification number, 6 digits.")],
    drn: Annotated[str, typer.Option(help="Decoder reference number (meter number), 11 digits.")],
) -> None:
    """Derive a meter's decoder key with DKGA02."""
    vk = _key(vending_key, "vending key")
    try:
        data = sts.KeyData(key_type, sgc, tariff_index, krn, iin, drn)
        decoder_key = sts.derive_decoder_key(vk, data)
    except sts.StsError as error:
        fail(str(error))
    emit({"decoder_key": f"{decoder_key:016x}"})


@app.command("encode")
def encode(
    decoder_key: Annotated[str, typer.Option(help="Decoder key, 16 hex digits.")],
    token_class: Annotated[
        int, typer.Option("--class", help="Token class: 0 credit, 2 management.")
    ],
    subclass: Annotated[int, typer.Option(help="Token subclass 0-15.")],
    rnd: Annotated[int, typer.Option(help="4-bit random number 0-15.")],
    issued_at: Annotated[str, typer.Option(help="Issue time, ISO 8601 (meter local time).")],
    amount_kwh: Annotated[
        str | None, typer.Option(help="Class 0: amount in kWh (rounded up as STS does).")
    ] = None,
    register: Annotated[int | None, typer.Option(help="Class 2: register value 0-65535.")] = None,
    base_date: BaseDateOption = "1993",
) -> None:
    """Encode a class 0 or class 2 token."""
    key = _key(decoder_key, "decoder key")
    base = _base(base_date)
    try:
        when = datetime.fromisoformat(issued_at)
    except ValueError:
        fail(f"issued-at {issued_at!r} is not an ISO 8601 date-time")
    try:
        if token_class == sts.TokenClass.CREDIT:
            if amount_kwh is None or register is not None:
                fail("class 0 takes --amount-kwh (and no --register)")
            try:
                kwh = Decimal(amount_kwh)
            except InvalidOperation:
                fail(f"amount-kwh {amount_kwh!r} is not a number")
            fields = sts.credit(subclass, rnd, when, kwh, base)
        elif token_class == sts.TokenClass.MANAGEMENT:
            if register is None or amount_kwh is not None:
                fail("class 2 takes --register (and no --amount-kwh)")
            fields = sts.management(subclass, rnd, when, register, base)
        else:
            fail(f"token class {token_class} is not supported (only 0 and 2)")
        emit({"token": sts.encode(fields, key)})
    except sts.StsError as error:
        fail(str(error))


@app.command("decode")
def decode(
    token: Annotated[str, typer.Argument(help="The 20-digit token.")],
    decoder_key: Annotated[str, typer.Option(help="Decoder key, 16 hex digits.")],
    base_date: BaseDateOption = "1993",
) -> None:
    """Decode a token; `crc_ok` is false for a wrong key or a mistyped token."""
    key = _key(decoder_key, "decoder key")
    base = _base(base_date)
    try:
        decoded = sts.decode(token, key)
    except sts.StsError as error:
        fail(str(error))
    fields = decoded.fields
    document: dict[str, object] = {
        "class": int(fields.token_class),
        "subclass": fields.subclass,
        "rnd": fields.rnd,
        "tid": fields.tid,
        "issued_at": fields.issued_at(base).isoformat(timespec="minutes"),
    }
    if fields.token_class is sts.TokenClass.CREDIT:
        document["amount_kwh"] = float(fields.amount_kwh)
    else:
        document["register"] = fields.register
    document["crc_ok"] = decoded.crc_ok
    emit(document)

"""`pintar pdu`: decode SMS PDUs (DELIVER, SUBMIT, STATUS-REPORT) and encode SMS-SUBMIT."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from gateway import pdu
from operator_data.cli.output import emit, fail

app = typer.Typer(help="SMS PDUs (3GPP TS 23.040): decode and encode.", no_args_is_help=True)


def _time(moment: datetime) -> str:
    return moment.isoformat()


def _concat(concat: pdu.Concat | None) -> dict[str, int] | None:
    if concat is None:
        return None
    return {"ref": concat.ref, "total": concat.total, "seq": concat.seq}


def _payload(encoding: pdu.Encoding, text: str | None, data: bytes | None) -> dict[str, object]:
    if encoding is pdu.Encoding.DATA8:
        return {"encoding": str(encoding), "data_hex": (data or b"").hex().upper()}
    return {"encoding": str(encoding), "text": text}


def describe(decoded: pdu.Decoded) -> dict[str, object]:
    """The JSON document of one decoded PDU."""
    message = decoded.pdu
    document: dict[str, object]
    if isinstance(message, pdu.Deliver):
        document = {"type": "deliver", "sender": message.sender}
        document |= _payload(message.encoding, message.text, message.data)
        document |= {
            "concat": _concat(message.concat),
            "timestamp": _time(message.timestamp),
            "smsc": message.smsc,
        }
    elif isinstance(message, pdu.Submit):
        document = {"type": "submit", "recipient": message.recipient}
        document |= _payload(message.encoding, message.text, message.data)
        document |= {
            "concat": _concat(message.concat),
            "timestamp": None,
            "message_reference": message.message_reference,
            "status_report_requested": message.status_report_requested,
        }
    else:
        document = {
            "type": "status-report",
            "recipient": message.recipient,
            "message_reference": message.message_reference,
            "status": message.status,
            "timestamp": _time(message.submitted),
            "discharge_time": _time(message.discharge_time),
            "smsc": message.smsc,
        }
    document["smsc_part_assumed"] = decoded.smsc_part_assumed
    return document


@app.command("decode")
def decode(
    hex_text: Annotated[str, typer.Argument(metavar="HEX", help="The PDU in hexadecimal.")],
    smsc: Annotated[
        bool | None,
        typer.Option(
            "--smsc/--no-smsc",
            help="The hex starts with an SMSC part (as AT+CMGR shows) or not; default: detect.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Decode an SMS-DELIVER, SMS-SUBMIT or SMS-STATUS-REPORT PDU; times are UTC."""
    try:
        decoded = pdu.decode(hex_text, has_smsc=smsc)
    except pdu.PduError as error:
        fail(str(error))
    emit(describe(decoded))


@app.command("encode")
def encode(
    to: Annotated[str, typer.Option("--to", help="Recipient: +62... or national digits.")],
    text: Annotated[str | None, typer.Option(help="Message text (GSM-7, else UCS-2).")] = None,
    data_hex: Annotated[str | None, typer.Option(help="8-bit data payload in hex.")] = None,
    status_report: Annotated[
        bool, typer.Option("--status-report", help="Request a status report.")
    ] = False,
    message_reference: Annotated[int, typer.Option(help="TP-MR 0-255.")] = 0,
    concat_ref: Annotated[
        int | None, typer.Option(help="Concatenation reference for long messages.")
    ] = None,
) -> None:
    """Encode SMS-SUBMIT PDUs ready for AT+CMGS=<tpdu_length>."""
    if (text is None) == (data_hex is None):
        fail("give exactly one of --text or --data-hex")
    data: bytes | None = None
    if data_hex is not None:
        try:
            data = bytes.fromhex(data_hex)
        except ValueError:
            fail(f"--data-hex {data_hex!r} is not hexadecimal")
    try:
        parts = pdu.encode_submit(
            to,
            text=text,
            data=data,
            status_report=status_report,
            message_reference=message_reference,
            concat_ref=concat_ref,
        )
    except pdu.PduError as error:
        fail(str(error))
    emit({"pdus": [{"hex": part.hex, "tpdu_length": part.tpdu_length} for part in parts]})

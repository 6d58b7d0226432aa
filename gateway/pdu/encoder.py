"""Building SMS-SUBMIT (what a modem sends), SMS-DELIVER and SMS-STATUS-REPORT (what it shows).

SUBMIT is built here rather than by `gsmmodem.pdu.encodeSmsSubmitPdu` because that function
ties the concatenation reference to TP-MR, cannot carry 8-bit data and encodes '`' as 0x5F
(which is '§'); the tests check that both produce the same bytes wherever the library is right.
"""

from __future__ import annotations

from datetime import datetime

from gateway.pdu import fields, user_data
from gateway.pdu.errors import PduError
from gateway.pdu.model import Concat, Encoding, SubmitPart

# First-octet bits (TS 23.040 9.2.3.1-9.2.3.26)
MTI_DELIVER = 0x00
MTI_SUBMIT = 0x01
MTI_STATUS_REPORT = 0x02
TP_MMS_NO_MORE = 0x04  # deliver / status report: no more messages waiting at the SMSC
TP_SRR = 0x20  # submit: status report requested
TP_UDHI = 0x40
PID_PLAIN = 0x00


def _byte(value: int, name: str) -> int:
    if not 0 <= value <= 0xFF:
        raise PduError(f"{name} {value} does not fit one octet (0-255)")
    return value


def encode_submit(
    recipient: str,
    *,
    text: str | None = None,
    data: bytes | None = None,
    status_report: bool = False,
    message_reference: int = 0,
    concat_ref: int | None = None,
) -> list[SubmitPart]:
    """SMS-SUBMIT PDUs for `AT+CMGS`, split with a concatenation header when too long.

    GSM-7 when the text allows, UCS-2 otherwise, 8-bit for `data`. Without `concat_ref`
    a multipart message uses `message_reference` as its concatenation reference.
    """
    reference = _byte(message_reference, "message reference")
    address = fields.encode_address(recipient, allow_alphanumeric=False)
    encoding, units = user_data.payload_units(text, data)
    parts = user_data.split(encoding, units, reference if concat_ref is None else concat_ref)
    result: list[SubmitPart] = []
    for part in parts:
        first = MTI_SUBMIT | (TP_SRR if status_report else 0) | (TP_UDHI if part.has_header else 0)
        tpdu = (
            bytes([first, reference])
            + address
            + bytes([PID_PLAIN, part.dcs, part.udl])
            + part.octets
        )
        result.append(SubmitPart(hex=(b"\x00" + tpdu).hex().upper(), tpdu_length=len(tpdu)))
    return result


def encode_deliver(
    sender: str,
    *,
    text: str | None = None,
    data: bytes | None = None,
    timestamp: datetime,
    concat: Concat | None = None,
    smsc: str | None = None,
    encoding: Encoding | None = None,
) -> str:
    """One SMS-DELIVER with its SMSC part, as `AT+CMGR` / `+CMT` show it; must fit one SMS.
    `encoding` keeps the sender's alphabet (a GSM-7 part of a UCS-2 message stays UCS-2)."""
    encoding, units = user_data.payload_units(text, data, encoding)
    part = user_data.build(encoding, units, concat)
    first = MTI_DELIVER | TP_MMS_NO_MORE | (TP_UDHI if part.has_header else 0)
    pdu = (
        fields.encode_smsc(smsc)
        + bytes([first])
        + fields.encode_address(sender, allow_alphanumeric=True)
        + bytes([PID_PLAIN, part.dcs])
        + fields.encode_timestamp(timestamp)
        + bytes([part.udl])
        + part.octets
    )
    return pdu.hex().upper()


def encode_status_report(
    recipient: str,
    *,
    message_reference: int,
    status: int,
    submitted: datetime,
    discharged: datetime,
    smsc: str | None = None,
) -> str:
    """SMS-STATUS-REPORT with its SMSC part, as `+CDS` / `AT+CMGR` show it."""
    pdu = (
        fields.encode_smsc(smsc)
        + bytes([MTI_STATUS_REPORT | TP_MMS_NO_MORE, _byte(message_reference, "message reference")])
        + fields.encode_address(recipient, allow_alphanumeric=False)
        + fields.encode_timestamp(submitted)
        + fields.encode_timestamp(discharged)
        + bytes([_byte(status, "status")])
    )
    return pdu.hex().upper()

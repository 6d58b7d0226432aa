"""SMS PDUs (3GPP TS 23.040 / 23.038): build and decode SUBMIT, DELIVER and STATUS-REPORT."""

from gateway.pdu.decoder import decode
from gateway.pdu.encoder import encode_deliver, encode_status_report, encode_submit
from gateway.pdu.errors import PduError
from gateway.pdu.model import (
    Concat,
    Decoded,
    DecodedPdu,
    Deliver,
    Encoding,
    StatusReport,
    Submit,
    SubmitPart,
)

__all__ = [
    "Concat",
    "Decoded",
    "DecodedPdu",
    "Deliver",
    "Encoding",
    "PduError",
    "StatusReport",
    "Submit",
    "SubmitPart",
    "decode",
    "encode_deliver",
    "encode_status_report",
    "encode_submit",
]

"""SMPP 3.4: a transceiver link to an operator's SMSC as a gateway carrier, and a simulator.

See `carrier.SmppCarrier` (use it behind `gateway.spooled.SpooledGateway`) and
`simulator.SmscSimulator`. The PDU codec is `pdu`; text, splitting and receipts `message`;
the SMSC-id book `receipts`; multipart inbound reassembly on disk `reassembly`.
"""

from gateway.smpp.carrier import SmppCarrier, SmppSettings
from gateway.smpp.message import LongMessages
from gateway.smpp.reassembly import PartStore
from gateway.smpp.receipts import ReceiptBook
from gateway.smpp.simulator import SmscSimulator

__all__ = [
    "LongMessages",
    "PartStore",
    "ReceiptBook",
    "SmppCarrier",
    "SmppSettings",
    "SmscSimulator",
]

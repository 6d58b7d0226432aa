"""Simulated SMS network (an SMSC) for emulated modems, simulated meters and phones.

Endpoint interface — anything with an MSISDN implements two coroutines and attaches:

    class Endpoint(Protocol):
        async def receive_sms(self, sms: NetworkSms) -> bool   # False: can't store now, retry
        async def receive_status_report(self, report: NetworkStatusReport) -> None

    async with SmsNetwork(NetworkProfile(...), seed=1) as network:
        network.attach("+6281200000001", endpoint)
        network.submit(sender, recipient, text=..., data=..., concat=..., report_reference=mr)

`submit` returns at once; delivery happens after the profile's delay, maybe lost,
duplicated or overtaken; a report request (`report_reference`, the sender's TP-MR) brings
a status report back to the sender's endpoint.

`NetworkSmsc` (smpp_bridge) is an SMPP 3.4 SMSC on this network: the endpoint of a
service's short code, for a gateway with carrier smpp.
"""

from meter_sim.network.messages import Endpoint, NetworkSms, NetworkStatusReport
from meter_sim.network.smpp_bridge import NetworkSmsc
from meter_sim.network.smsc import (
    STATUS_DELIVERED,
    STATUS_NOT_DELIVERED,
    STATUS_UNKNOWN_RECIPIENT,
    EchoEndpoint,
    NetworkProfile,
    SmsNetwork,
)

__all__ = [
    "STATUS_DELIVERED",
    "STATUS_NOT_DELIVERED",
    "STATUS_UNKNOWN_RECIPIENT",
    "EchoEndpoint",
    "Endpoint",
    "NetworkProfile",
    "NetworkSms",
    "NetworkSmsc",
    "NetworkStatusReport",
    "SmsNetwork",
]

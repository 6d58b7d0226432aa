"""What the hub knows of its gateways and modems, from the transport's own events.

Every event a gateway sends proves it alive; `ModemStateChanged` says what a modem is
doing. The board is the helpdesk's status page, the same for an in-process gateway and for
gateways on other machines behind the MQTT bus.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from gateway.mqtt.topics import SpoolReport
from gateway.transport import SIGNAL_DETAIL, ModemStateChanged, ModemStatus, TransportEvent
from operator_data.api.ops_metrics import LinkReading, ModemReading, SpoolReading
from operator_data.api.providers import GatewayStatus
from operator_data.api.providers import ModemStatus as ModemView

_SERVING = {ModemStatus.READY, ModemStatus.BUSY}
# For the metrics a full SIM is still serving: the pool empties it and goes on sending,
# and no later event says so (the modem's state never left READY underneath).
_UP = _SERVING | {ModemStatus.SIM_FULL}
# The AT start-up step whose failure means no network (gateway/at/startup.py: a modem not
# registered by the deadline fails "start-up failed at registration: ...").
_NO_NETWORK_STEP = "at registration:"


class P2apstLink(Protocol):
    def down_for(self) -> float | None: ...


@runtime_checkable
class SpoolReports(Protocol):
    """A transport that hears the gateways' spool counts (gateway.mqtt.MqttTransport)."""

    @property
    def spool_reports(self) -> Mapping[str, SpoolReport]: ...


@dataclass
class _Modem:
    status: ModemStatus
    at: datetime
    detail: str
    signal_percent: int | None = None
    operator: str | None = None
    imei: str | None = None


@dataclass
class ModemBoard:
    last_seen: dict[str, datetime] = field(default_factory=dict)
    modems: dict[tuple[str, str], _Modem] = field(default_factory=dict)
    #: For the metrics (operator_data.api.ops_metrics.WorkerView): this worker's name, its
    #: P2APST client (None: none configured) and its transport (spool counts, if it has them).
    worker: str = "hub"
    p2apst: P2apstLink | None = None
    transport: object = None

    def seen(self, event: TransportEvent, now: datetime) -> None:
        gateway = event.gateway or "local"
        self.last_seen[gateway] = now
        if isinstance(event, ModemStateChanged):
            self.modems[(gateway, event.modem)] = _merged(
                self.modems.get((gateway, event.modem)), event
            )

    async def gateways(self) -> Sequence[GatewayStatus]:
        names = sorted(set(self.last_seen) | {gateway for gateway, _ in self.modems})
        return [
            GatewayStatus(
                gateway_id=name,
                connected=name in self.last_seen,
                last_seen=self.last_seen.get(name),
                modems=tuple(
                    ModemView(
                        modem_id=modem,
                        gateway_id=name,
                        registered=state.status in _SERVING,
                        last_seen=state.at,
                        detail=f"{state.status.value} {state.detail}".strip(),
                        operator=state.operator,
                        signal_percent=state.signal_percent,
                        imei=state.imei,
                    )
                    for (gateway, modem), state in sorted(self.modems.items())
                    if gateway == name
                ),
            )
            for name in names
        ]

    # -- operator_data.api.ops_metrics.WorkerView: read-only views for /metrics ---------

    def modem_readings(self) -> Sequence[ModemReading]:
        return [
            ModemReading(
                gateway=gateway,
                modem=modem,
                up=state.status in _UP,
                no_network=state.status is ModemStatus.OUT_OF_SERVICE
                and _NO_NETWORK_STEP in state.detail,
                since=state.at,
                signal_percent=state.signal_percent,
            )
            for (gateway, modem), state in sorted(self.modems.items())
        ]

    def p2apst_link(self) -> LinkReading | None:
        if self.p2apst is None:
            return None
        down = self.p2apst.down_for()
        return LinkReading(self.worker, up=down is None, down_for_s=down or 0.0)

    def spool_readings(self) -> Sequence[SpoolReading]:
        if not isinstance(self.transport, SpoolReports):
            return ()
        return [
            SpoolReading(gateway, dict(report.rows), report.at)
            for gateway, report in sorted(self.transport.spool_reports.items())
        ]


def _merged(before: _Modem | None, event: ModemStateChanged) -> _Modem:
    """The new state; a signal-only event keeps the reason shown, and what an older gateway
    (or a modem that refused AT+CGSN / AT+COPS?) does not report stays as last known."""
    detail = event.detail
    if before is not None and event.detail == SIGNAL_DETAIL and event.status is before.status:
        detail = before.detail
    return _Modem(
        event.status,
        event.at,
        detail,
        signal_percent=event.signal_percent,
        operator=event.operator or (before.operator if before else None),
        imei=event.imei or (before.imei if before else None),
    )

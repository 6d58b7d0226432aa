"""What the hub knows of its gateways and modems, from the transport's own events.

Every event a gateway sends proves it alive; `ModemStateChanged` says what a modem is
doing. The board is the helpdesk's status page, the same for an in-process gateway and for
gateways on other machines behind the MQTT bus.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gateway.transport import ModemStateChanged, ModemStatus, TransportEvent
from operator_data.api.providers import GatewayStatus
from operator_data.api.providers import ModemStatus as ModemView

_SERVING = {ModemStatus.READY, ModemStatus.BUSY}


@dataclass
class _Modem:
    status: ModemStatus
    at: datetime
    detail: str


@dataclass
class ModemBoard:
    last_seen: dict[str, datetime] = field(default_factory=dict)
    modems: dict[tuple[str, str], _Modem] = field(default_factory=dict)

    def seen(self, event: TransportEvent, now: datetime) -> None:
        gateway = event.gateway or "local"
        self.last_seen[gateway] = now
        if isinstance(event, ModemStateChanged):
            self.modems[(gateway, event.modem)] = _Modem(event.status, event.at, event.detail)

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
                    )
                    for (gateway, modem), state in sorted(self.modems.items())
                    if gateway == name
                ),
            )
            for name in names
        ]

"""A P2APST link down too long is seen: one helpdesk incident per outage of this worker's
link (purchases wait meanwhile: accepted, neither paid nor declined), and a log line when
it is back. Checked by every worker's sweep (each has its own link), not once per cluster.
"""

from __future__ import annotations

import logging

from operator_data.hub.context import HubContext
from operator_data.hub.helpdesk import open_incident

log = logging.getLogger("operator_data.hub.link_watch")
LINK_DOWN = "p2apst_link_down"


class LinkWatch:
    """Remembers whether this outage was reported (a restarted worker reports it anew)."""

    def __init__(self, ctx: HubContext, worker_id: str) -> None:
        self._ctx = ctx
        self._worker = worker_id
        self._reported = False

    async def check(self) -> bool:
        """Open the incident if the link has been down past `p2apst.link_down_alarm_s`;
        True if this call opened one."""
        client = self._ctx.p2apst
        if client is None:
            return False
        down = client.down_for()
        if down is None:
            if self._reported:
                log.warning("P2APST link of %s is back", self._worker)
                self._reported = False
            return False
        limit = self._ctx.settings.p2apst.link_down_alarm_s
        if self._reported or down < limit:
            return False
        subject = f"P2APST link down for {down:.0f} s on worker {self._worker}"
        async with self._ctx.unit() as (conn, _):
            await open_incident(
                conn,
                category=LINK_DOWN,
                subject=subject,
                at=self._ctx.now(),
                notes=(
                    "Purchases accepted meanwhile wait for the link (none is paid or declined "
                    "until it is back); check the network path to P2APST and its host."
                ),
            )
        log.error("%s: helpdesk incident opened", subject)
        self._reported = True
        return True

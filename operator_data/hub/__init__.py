"""The hub's workflows: inbound SMS, meter frames, token delivery, purchases by SMS,
pushed tokens, and SLA breach events (see docs/architecture.md, "The hub's workflows")."""

from operator_data.hub.context import HubContext
from operator_data.hub.hub import Hub
from operator_data.hub.journal import HubPurchaseJournal, HubReportOutbox
from operator_data.hub.meter_link import frame_key_id
from operator_data.hub.push import PushedToken, PushOutcome, PushRefused, push_token
from operator_data.hub.sla import Metric, SlaBreach, SlaMonitor

__all__ = [
    "Hub",
    "HubContext",
    "HubPurchaseJournal",
    "HubReportOutbox",
    "Metric",
    "PushOutcome",
    "PushRefused",
    "PushedToken",
    "SlaBreach",
    "SlaMonitor",
    "frame_key_id",
    "push_token",
]

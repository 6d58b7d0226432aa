"""SLA figures computed from the state-history timestamps (architecture notes: "SLA figures
are computed from those timestamps, not measured separately")."""

from operator_data.sla.report import Breach, Figures, SlaReport, StageReport, sla_report
from operator_data.sla.stages import STAGES, STAGES_BY_NAME, Source, Stage, StageKind, StatePoint

__all__ = [
    "STAGES",
    "STAGES_BY_NAME",
    "Breach",
    "Figures",
    "SlaReport",
    "Source",
    "Stage",
    "StageKind",
    "StageReport",
    "StatePoint",
    "sla_report",
]

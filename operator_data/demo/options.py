"""What a demo run is asked to do, and the `--faults` language."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path


class Profile(StrEnum):
    FAST = "fast"  # modems answer at once, the network delivers at once
    REALISTIC = "realistic"  # a send takes 5–10 s per modem, delivery 1–5 s


class FaultSpecError(ValueError):
    """A `--faults` SPEC that does not parse; the message says which item."""


@dataclass(frozen=True, slots=True)
class DemoFaults:
    """Rates (0–1) of the faults injected across the system."""

    loss: float = 0.0  # network loses an SMS
    duplicate: float = 0.0  # network delivers an SMS twice
    reorder: float = 0.0  # network delivers an SMS late, after later ones
    modem_errors: float = 0.0  # an AT+CMGS answered with +CMS ERROR (busy, network, unknown)
    p2apst_noanswer: float = 0.0  # P2APST takes the money but the 2210 never comes
    p2apst_drop: float = 0.0  # P2APST drops the connection after paying
    meter_offline: float = 0.0  # share of meters offline for a while
    meter_loss: float = 0.0  # a meter's own SMS lost
    typos: float = 0.0  # customers misspell commands
    wrong_pin: float = 0.0  # customers type a wrong PIN
    repeats: float = 0.0  # customers send the same SMS twice

    @classmethod
    def parse(cls, spec: str) -> DemoFaults:
        """`moderate`, `none`, or `name=rate,...` (names as the fields), e.g.
        `loss=0.02,p2apst_noanswer=0.05,repeats=0.1`; a preset may be followed by items."""
        values: dict[str, float] = {}
        known = {f.name for f in fields(cls)}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            if item in PRESETS:
                values.update(PRESETS[item])
                continue
            name, sep, text = item.partition("=")
            if not sep:
                raise FaultSpecError(
                    f"{item!r}: expected a preset ({', '.join(PRESETS)}) or name=rate"
                )
            if name not in known:
                raise FaultSpecError(f"{name!r} is not a fault; known: {', '.join(sorted(known))}")
            try:
                rate = float(text)
            except ValueError:
                raise FaultSpecError(f"{item!r}: {text!r} is not a number") from None
            if not 0.0 <= rate <= 1.0:
                raise FaultSpecError(f"{item!r}: a rate is between 0 and 1")
            values[name] = rate
        return cls(**values)

    @property
    def any(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


PRESETS: dict[str, dict[str, float]] = {
    "none": {},
    "moderate": {
        "loss": 0.02,
        "duplicate": 0.02,
        "reorder": 0.05,
        "modem_errors": 0.03,
        "p2apst_noanswer": 0.03,
        "p2apst_drop": 0.01,
        "meter_offline": 0.02,
        "meter_loss": 0.02,
        "typos": 0.05,
        "wrong_pin": 0.05,
        "repeats": 0.05,
    },
}


@dataclass(frozen=True, slots=True)
class DemoOptions:
    meters: int = 200
    modems: int = 4
    profile: Profile = Profile.FAST
    duration: float | None = None  # seconds; None = until interrupted
    faults: DemoFaults = field(default_factory=DemoFaults)
    seed: int = 1
    data_dir: Path = Path("pintar-demo")
    summary: Path | None = None
    web_port: int | None = 8000  # None: no helpdesk web app
    purchase_rate: float | None = None  # purchases per second; None: from meters and profile
    telemetry_interval_min: int = 1
    drain_seconds: float = 60.0  # after the traffic stops: time for answers to come home
    live: bool = True  # print live counters

    def __post_init__(self) -> None:
        if self.meters < 1:
            raise ValueError("--meters must be at least 1")
        if self.modems < 1:
            raise ValueError("--modems must be at least 1")
        if self.duration is not None and self.duration <= 0:
            raise ValueError("--duration must be positive")

    @property
    def rate(self) -> float:
        if self.purchase_rate is not None:
            return self.purchase_rate
        # Each purchase costs about four SMS on the modems (command, token, result,
        # receipt): stay well inside what they carry, and inside what this whole process
        # (hub, modems, meters, phones, simulators) sustains on a 2-core machine: 400
        # meters on 8 modems took 20 purchases/s for 60 s with nothing left open, so the
        # default (200 meters: 4/s) leaves it a wide margin.
        per_modem = 20.0 if self.profile is Profile.FAST else 0.1
        return min(self.meters / 50, per_modem * self.modems / 4, 20.0)

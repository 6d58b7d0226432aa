"""Faults the simulator injects: a random plan from a compact SPEC string, and a script of
per-request overrides for deterministic tests.

SPEC: comma-separated `name=value` items, for example
`latency=0.2:0.5,drop=0.05,noanswer=0.05,late=0.05,late_after=2,error=0046:0.02,seed=1`.

- `latency=SECONDS[:P]`  delay the answer by SECONDS, with probability P (default 1)
- `noanswer=P`           process the request but never answer
- `lost=P`               the request is lost on the way: neither processed nor answered
- `late=P`               answer only after `late_after` seconds (default 2), or just before
                         the next message on the connection, whichever comes first
- `drop=P`               process the request, then close the connection unanswered
- `error=CODE:P`         decline a purchase/inquiry with CODE instead of processing it
                         (may be given several times)
- `seed=N`               seed of the random choices, for repeatable runs
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

_CODE_DIGITS = 4


class FaultKind(StrEnum):
    NONE = "none"
    LATENCY = "latency"
    NO_ANSWER = "noanswer"
    LOST = "lost"
    LATE = "late"
    DROP = "drop"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    seconds: float = 0.0  # LATENCY: the delay; LATE: the longest hold
    code: str = ""  # ERROR: the response code

    @classmethod
    def latency(cls, seconds: float) -> Fault:
        return cls(FaultKind.LATENCY, seconds=seconds)

    @classmethod
    def no_answer(cls) -> Fault:
        return cls(FaultKind.NO_ANSWER)

    @classmethod
    def lost(cls) -> Fault:
        """The request never arrives: nothing is processed, nothing answered."""
        return cls(FaultKind.LOST)

    @classmethod
    def late(cls, seconds: float = 60.0) -> Fault:
        """Held until the next message arrives on the connection (or `seconds` pass)."""
        return cls(FaultKind.LATE, seconds=seconds)

    @classmethod
    def drop(cls) -> Fault:
        return cls(FaultKind.DROP)

    @classmethod
    def error(cls, code: str) -> Fault:
        return cls(FaultKind.ERROR, code=code)


NO_FAULT = Fault(FaultKind.NONE)


class FaultSpecError(ValueError):
    pass


def _probability(text: str, item: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FaultSpecError(f"{item!r}: {text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise FaultSpecError(f"{item!r}: probability {value} is not within 0..1")
    return value


@dataclass(frozen=True, slots=True)
class FaultPlan:
    latency: float = 0.0  # seconds
    latency_p: float = 0.0
    noanswer: float = 0.0
    lost: float = 0.0
    late: float = 0.0
    late_after: float = 2.0
    drop: float = 0.0
    errors: tuple[tuple[str, float], ...] = ()
    seed: int | None = None

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        values: dict[str, object] = {}
        errors: list[tuple[str, float]] = []
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, sep, value = item.partition("=")
            if not sep:
                raise FaultSpecError(f"{item!r} is not name=value")
            match name.strip():
                case "latency":
                    seconds, _, p = value.partition(":")
                    values["latency"] = _seconds(seconds, item)
                    values["latency_p"] = _probability(p, item) if p else 1.0
                case "noanswer" | "lost" | "late" | "drop" as key:
                    values[key] = _probability(value, item)
                case "late_after":
                    values["late_after"] = _seconds(value, item)
                case "error":
                    code, _, p = value.partition(":")
                    if len(code) != _CODE_DIGITS or not code.isdigit():
                        raise FaultSpecError(f"{item!r}: {code!r} is not a 4-digit code")
                    errors.append((code, _probability(p or "1", item)))
                case "seed":
                    try:
                        values["seed"] = int(value)
                    except ValueError:
                        raise FaultSpecError(f"{item!r}: seed must be an integer") from None
                case other:
                    raise FaultSpecError(f"unknown fault {other!r}")
        plan = cls(errors=tuple(errors), **values)  # type: ignore[arg-type]
        total = plan.noanswer + plan.lost + plan.late + plan.drop + sum(p for _, p in plan.errors)
        if total > 1.0:
            raise FaultSpecError(f"fault probabilities add up to {total}, over 1")
        return plan


def _seconds(text: str, item: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FaultSpecError(f"{item!r}: {text!r} is not a number of seconds") from None
    if value < 0:
        raise FaultSpecError(f"{item!r}: seconds must not be negative")
    return value


class FaultPicker:
    """Draws faults from a plan; one random generator per simulator run."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._random = random.Random(plan.seed)

    def pick(self, *, can_error: bool) -> Fault:
        plan = self.plan
        roll = self._random.random()
        choices: list[tuple[float, Fault]] = [
            (plan.noanswer, Fault.no_answer()),
            (plan.lost, Fault.lost()),
            (plan.late, Fault.late(plan.late_after)),
            (plan.drop, Fault.drop()),
        ]
        if can_error:
            choices += [(p, Fault.error(code)) for code, p in plan.errors]
        for p, fault in choices:
            if roll < p:
                return fault
            roll -= p
        if plan.latency_p and self._random.random() < plan.latency_p:
            return Fault.latency(plan.latency)
        return NO_FAULT


@dataclass(slots=True)
class FaultScript:
    """Faults for the next matching requests, taken in order; they beat the random plan."""

    _entries: list[tuple[frozenset[str] | None, Fault]] = field(default_factory=list)

    def push(self, fault: Fault, mti: str | Iterable[str] | None = None) -> None:
        """Applies `fault` to the next request of type `mti` (any type if None)."""
        wanted = None if mti is None else frozenset([mti] if isinstance(mti, str) else mti)
        self._entries.append((wanted, fault))

    def take(self, mti: str) -> Fault | None:
        for index, (wanted, fault) in enumerate(self._entries):
            if wanted is None or mti in wanted:
                del self._entries[index]
                return fault
        return None

    def __len__(self) -> int:
        return len(self._entries)

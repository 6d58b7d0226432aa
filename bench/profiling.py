"""Where the time goes: a pyinstrument pass over a benchmark run that misses its target,
summarised as text for the report (share of wall time by package, the functions with the
most time of their own), so the profile next to a missed figure is always from this run."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pyinstrument import Profiler
from pyinstrument.frame import Frame

_SITE = re.compile(r"site-packages/([A-Za-z0-9_]+)")
_OURS = ("operator_data", "gateway", "firmware_protocol", "p2apst_adapter", "meter_sim", "bench")
_IDLE = {"poll", "select", "epoll", "_run_once"}


@dataclass(slots=True)
class Profile:
    seconds: float = 0.0
    by_package: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    by_function: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))

    def summary(self, top: int = 6) -> str:
        if self.seconds <= 0:
            return "pyinstrument recorded nothing"
        packages = ", ".join(
            f"{name} {100 * t / self.seconds:.0f} %" for name, t in _largest(self.by_package, 7)
        )
        functions = "; ".join(
            f"{name} {100 * t / self.seconds:.0f} %" for name, t in _largest(self.by_function, top)
        )
        return (
            f"pyinstrument over {self.seconds:.1f} s of the main thread — own time by "
            f"package: {packages}. Functions with the most own time: {functions}."
        )


def _largest(times: dict[str, float], count: int) -> list[tuple[str, float]]:
    return sorted(times.items(), key=lambda item: -item[1])[:count]


_package_idle = "event loop idle (waiting for I/O or a worker thread)"


def _package(frame: Frame) -> str:
    path = frame.file_path or ""
    if frame.function.rsplit(".", 1)[-1] in _IDLE or "selectors.py" in path:
        return _package_idle
    site = _SITE.search(path)
    if site:
        return site.group(1)
    for name in _OURS:
        if f"/{name}/" in path:
            return name
    return "stdlib and built-ins" if path else "other"


def _walk(frame: Frame, profile: Profile, parent: Frame | None = None) -> None:
    own = frame.time - sum(child.time for child in frame.children)
    # pyinstrument books a function's own time on a synthetic "[self]" child.
    owner = parent if frame.is_synthetic and parent is not None else frame
    if own > 0:
        if frame.function in ("[await]", "[out-of-context]"):
            package = _package_idle
        else:
            package = _package(owner)
        profile.by_package[package] += own
        where = (owner.file_path_short or "").replace("\\", "/").rsplit("/", 2)
        label = f"{'/'.join(where[-2:])}:{owner.function}" if where[0] else owner.function
        profile.by_function[label] += own
    for child in frame.children:
        _walk(child, profile, frame)


@contextmanager
def sampled(interval: float = 0.001) -> Iterator[Profile]:
    """Profile the main thread for the duration of the block; the Profile is filled in
    when the block ends."""
    profile = Profile()
    profiler = Profiler(interval=interval, async_mode="disabled")
    profiler.start()
    try:
        yield profile
    finally:
        profiler.stop()
        root = profiler.last_session.root_frame() if profiler.last_session else None
        if root is not None:
            profile.seconds = root.time
            _walk(root, profile)

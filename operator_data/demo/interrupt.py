"""Ctrl-C for a demo: the first stops the traffic and lets the run end as `--duration`
would (drain, then the summary); a second cuts the drain short, and the summary says so.

The demo installs this instead of asyncio's own SIGINT handling, which cancels the main
task at the first Ctrl-C and so ended the run with no summary at all.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable


class Interrupts:
    """Two events, set by successive presses (or by `press()`, as tests and SIGTERM do)."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()  # first press: stop the traffic, drain, summarise
        self.cut = asyncio.Event()  # second press: stop draining now
        self.presses = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[Callable[[int], None]] = []

    def on_press(self, listener: Callable[[int], None]) -> None:
        """`listener(n)` on the n-th press, so the demo can say what the press does."""
        self._listeners.append(listener)

    def press(self) -> None:
        self.presses += 1
        if self.presses == 1:
            self.stop.set()
        else:
            self.cut.set()
        for listener in self._listeners:
            listener(self.presses)
        if self.presses >= 2:
            # Python's own handling again: a third Ctrl-C quits at once, even from a
            # start-up or shutdown that hangs.
            self.remove()

    def install(self) -> None:
        """Ctrl-C presses; a SIGTERM (a service manager stopping the demo) counts as one."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self.press)
        loop.add_signal_handler(signal.SIGTERM, self.press)
        self._loop = loop

    def remove(self) -> None:
        if self._loop is not None:
            self._loop.remove_signal_handler(signal.SIGINT)
            self._loop.remove_signal_handler(signal.SIGTERM)
            self._loop = None

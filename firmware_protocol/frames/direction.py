"""Who sends a frame: the hub (down) or the meter (up)."""

from __future__ import annotations

from enum import Enum


class Direction(Enum):
    DOWN = "down"  # hub → meter
    UP = "up"  # meter → hub

    @property
    def bit(self) -> int:
        """The direction bit of the header's flags byte."""
        return 1 if self is Direction.UP else 0

    @property
    def opposite(self) -> Direction:
        return Direction.DOWN if self is Direction.UP else Direction.UP

"""Test doubles for time: a clock that moves only when a test (or the fake sleep) moves it."""

from __future__ import annotations


class FakeTime:
    """A clock that only moves when the fake sleep is called (or a test moves it)."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        """The current fake time."""
        return self.now

    def sleep(self, seconds: float) -> None:
        """Advance the fake time instead of sleeping."""
        self.sleeps.append(seconds)
        self.now += seconds

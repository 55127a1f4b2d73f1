"""Migration schedules: an interval or a 5-field cron expression, in UTC, and their ticks.

This module owns :class:`Schedule` (the tick due at a time, how often beat checks it and how
long a tick's claim is kept), :func:`parse_schedule` and the bounds a schedule must respect.
"""

from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass
from typing import Final

from croniter import CroniterBadDateError, croniter

from vsbatch.migrations.fields import parse_duration

__all__ = [
    "CRON_CHECK",
    "CRON_GRACE",
    "CRON_HORIZON_YEARS",
    "MAX_INTERVAL",
    "MIN_INTERVAL",
    "Schedule",
    "parse_schedule",
]

# A cron tick is run when a check falls this soon after it; a beat that was down at the
# scheduled time does not catch up later than this.
CRON_GRACE: Final = 300
# How often beat checks a cron migration (seconds).
CRON_CHECK: Final = 15.0
# Interval bounds (seconds): a shorter interval would list every session of the account more
# than once a minute; a longer one is a typo (use a cron for yearly runs).
MIN_INTERVAL: Final = 60
MAX_INTERVAL: Final = 366 * 86400
# A cron must fire within this many years of now (29 February does; 31 February never does).
CRON_HORIZON_YEARS: Final = 5


@dataclass(frozen=True)
class Schedule:
    """When a migration runs: every ``interval`` seconds (epoch-aligned) or on a cron, in UTC."""

    text: str
    interval: int | None = None  # None: ``text`` is a 5-field cron expression

    def tick(self, now: float) -> int:
        """The latest scheduled time at or before ``now`` (epoch seconds)."""
        if self.interval is not None:
            return int(now // self.interval * self.interval)
        # croniter's get_prev is strict; starting a second later counts a tick at ``now``.
        return int(croniter(self.text, math.floor(now) + 1).get_prev(float))

    def due_tick(self, now: float) -> int | None:
        """The tick a check at ``now`` should run, or None (a cron tick older than the grace)."""
        tick = self.tick(now)
        if self.interval is None and now - tick > CRON_GRACE:
            return None
        return tick

    @property
    def check_period(self) -> float:
        """How often beat should check this schedule (seconds): twice per interval at least."""
        if self.interval is None:
            return CRON_CHECK
        return min(30.0, max(0.5, self.interval / 2))

    @property
    def claim_ttl(self) -> int:
        """How long the claim of one tick is kept (seconds): well past the tick's window."""
        if self.interval is None:
            return 4 * CRON_GRACE
        return max(600, 2 * self.interval)


def parse_schedule(
    text: str, *, min_interval: int = MIN_INTERVAL, now: float | None = None
) -> Schedule:
    """A schedule from ``"15m"``-style intervals or 5-field cron expressions (UTC).

    Args:
        text: The schedule as written.
        min_interval: The shortest interval accepted (seconds).
        now: Where to look for a cron's next fire time (default: the wall clock).

    Raises:
        ValueError: neither form, an interval out of bounds, or a cron that never fires.
    """
    seconds = parse_duration(text)
    if seconds is not None:
        if seconds < min_interval:
            raise ValueError(f"interval {text.strip()!r} is too short: at least {min_interval}s")
        if seconds > MAX_INTERVAL:
            raise ValueError(f"interval {text.strip()!r} is too long: at most 366d")
        return Schedule(text.strip(), seconds)
    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise ValueError(
            f"{text!r} is neither an interval (15m, 1h, 1d) nor a 5-field cron expression"
        )
    start = _time.time() if now is None else now
    try:
        croniter(text, start, max_years_between_matches=CRON_HORIZON_YEARS).get_next(float)
    except CroniterBadDateError:
        raise ValueError(
            f"cron {text!r} never fires (no date matches within {CRON_HORIZON_YEARS} years)"
        ) from None
    return Schedule(" ".join(text.split()))

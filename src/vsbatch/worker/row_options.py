"""What a row's processing is told and tells back: the per-batch ``RowOptions`` carried in the
task message, ``Later`` (not finished: come back after a pause), a chunk's ``ChunkResult``, and
the constants of a row's pacing (how soon to look again, how many rounds before giving up).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

UPDATABLE_STATUS = "requires_input"
UPDATE_PARAMS = ("metadata", "options", "provided_details", "type")
# A read-back that shows the change missing after a *finished* ambiguous answer earns the row a
# fresh key; this bounds how many, so a session that keeps refusing cannot loop forever.
MAX_KEY_GENERATIONS = 3

# A session locked by another update: how soon to look again.
BUSY_DELAY = 2.0
# An older update of the same session is queued or running: it usually ends within a request's
# time, so look again soon. (Behind a parked older update, the row waits BUSY_DELAY.)
ORDER_DELAY = 0.5
# Parked rows (see ``RowOptions.park_hours``) come back after a growing pause, capped here.
MAX_PARK_DELAY = 300.0
# A row whose in-task retries all met 429s goes back in line this many times (each round a
# full set of attempts, pausing 2, 4, 8, ... s) before it fails, retryable.
RATE_LIMIT_ROUNDS = 8
# A row whose in-task retries ended on an answer that leaves the request unsettled (a gateway's
# 5xx, a timeout, a dropped connection, 409 "in use", a 200 that is not our session) goes back
# in line this many times, same key, pausing 2, 4, 8, ... s: a request Stripe still executes
# behind such an answer lands meanwhile, and the next send under the key is replayed (or the
# request executes once). Later updates of the session wait behind it (the order gate).
UNSETTLED_ROUNDS = 6


@dataclass(frozen=True)
class RowOptions:
    """Per-batch processing choices, carried in the task message."""

    read_first: bool = False  # read each session before writing: skip unchanged / not updatable
    lock_wait: float = 5.0  # seconds to wait for a session's lock before giving the row back
    # Application updates: a row whose retries ran out on a retryable error is parked (kept
    # RETRYING, re-enqueued later) instead of failing, until this many hours after it was
    # submitted (Stripe keeps idempotency keys at least 24 h). 0 = fail at once (CSV batches).
    park_hours: float = 0.0

    def to_message(self) -> dict[str, Any]:
        """JSON-safe form for a Celery message."""
        return {
            "read_first": self.read_first,
            "lock_wait": self.lock_wait,
            "park_hours": self.park_hours,
        }

    @classmethod
    def from_message(cls, data: dict[str, Any] | None) -> RowOptions:
        """Inverse of ``to_message`` (unknown keys ignored, for rolling upgrades)."""
        data = data or {}
        return cls(
            read_first=bool(data.get("read_first", False)),
            lock_wait=float(data.get("lock_wait", 5.0)),
            park_hours=float(data.get("park_hours", 0.0)),
        )


@dataclass(frozen=True)
class Later:
    """The row is not finished: send it again after ``delay`` seconds."""

    delay: float


@dataclass
class ChunkResult:
    """A chunk run: rows finished, rows left for a new message, rows to retry after a pause."""

    finished: list[int] = field(default_factory=list)
    remaining: list[int] = field(default_factory=list)
    later: dict[float, list[int]] = field(default_factory=dict)

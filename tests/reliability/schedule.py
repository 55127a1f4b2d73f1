"""The explorer's fault schedules: a pure function of a seed, so that a failing seed replays.

A schedule is a few :class:`Fault` s, each at a time offset from the moment the batch's first
row finished (the workers are up and rows are moving). Process faults strike once (a worker
killed, stopped then continued, or terminated; Redis restarted or killed, down for a while);
emulator faults hold for a window (gateway 502/504s that apply behind the answer, stored 500s,
hangs, dropped connections, 429 storms, 503 storms). Nothing here reads a clock or the world:
``draw_schedule(seed)`` is the same list on every machine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

# Faults land in the first seconds of a run, while rows are in flight (a run lasts >= 6 s).
HORIZON = 3.5
MAX_FAULTS = 4

WORKER_FAULTS = ("worker_kill", "worker_stop", "worker_term")
REDIS_FAULTS = ("redis_restart", "redis_kill")
EMULATOR_FAULTS = (
    "gateway",
    "stored_500",
    "hang",
    "drop",
    "rate_limit_429",
    "lock_timeout_429",
    "fail_503",
)
KINDS = WORKER_FAULTS + REDIS_FAULTS + EMULATOR_FAULTS


@dataclass(frozen=True)
class Fault:
    """One scheduled fault: when (seconds after the first row finished), what, and how."""

    at: float
    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def late_seconds(self) -> float:
        """How long after the fault ends a request it delayed may still arrive."""
        return float(self.params.get("delay_seconds", 0)) + float(
            self.params.get("hang_seconds", 0)
        )

    @property
    def lasts(self) -> float:
        """How long the fault holds before it is undone (0 for a one-off)."""
        return float(self.params.get("seconds", self.params.get("down", 0.0)))

    def emulator_fields(self) -> dict[str, Any]:
        """The emulator config fields this fault sets while it holds (none for process faults)."""
        p = self.params
        fields: dict[str, dict[str, Any]] = {
            "gateway": {
                "gateway_rate": p.get("rate"),
                "gateway_answer": p.get("answer"),
                "gateway_delay_seconds": p.get("delay_seconds"),
            },
            "stored_500": {"fail_500_after_rate": p.get("rate")},
            "hang": {
                "hang_rate": p.get("rate"),
                "hang_seconds": p.get("hang_seconds"),
                "hang_applies": p.get("applies"),
            },
            "drop": {"drop_rate": p.get("rate"), "drop_applies": p.get("applies")},
            "rate_limit_429": {"rate_limit": p.get("limit")},
            "lock_timeout_429": {"lock_timeout_rate": p.get("rate")},
            "fail_503": {"fail_503_rate": p.get("rate")},
        }
        return fields.get(self.kind, {})

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.at:.1f}s {self.kind}({args})"


def _round(value: float) -> float:
    return round(value, 2)


def _params(rng: random.Random, kind: str) -> dict[str, Any]:
    """The parameters of one fault of this kind."""
    window = _round(rng.uniform(1.0, 4.0))
    if kind in ("worker_kill", "worker_term"):
        return {"worker": rng.randrange(3)}
    if kind == "worker_stop":
        # Across the heartbeat's expiry (1.5 s) and the session lock's TTL (3 s).
        return {"worker": rng.randrange(3), "seconds": _round(rng.uniform(0.5, 5.0))}
    if kind in REDIS_FAULTS:
        return {"down": _round(rng.uniform(0.0, 1.5))}
    if kind == "gateway":
        # Sporadic 502s, or a load balancer's outage (504s) long enough for a row to spend all
        # its retries on them; the request reaches Stripe before the row's read-back or after it.
        rate, seconds = rng.choice([(0.2, window), (0.4, window), (1.0, 6.0)])
        delay = rng.choice([0.1, 1.5, 6.0])
        answer = "504" if rate == 1.0 else "502"
        return {"rate": rate, "answer": answer, "delay_seconds": delay, "seconds": seconds}
    if kind == "hang":
        # Past the workers' 1 s read timeout; some hung updates are applied, some not.
        return {
            "rate": _round(rng.uniform(0.05, 0.2)),
            "hang_seconds": _round(rng.uniform(1.2, 2.0)),
            "applies": rng.choice([True, False, 0.5]),
            "seconds": window,
        }
    if kind == "drop":
        applies = rng.choice([True, False, 0.5])
        return {"rate": _round(rng.uniform(0.1, 0.3)), "applies": applies, "seconds": window}
    if kind == "rate_limit_429":
        # The fleet is configured for 10/s: Stripe allowing less gives a storm of 429s.
        return {"limit": rng.choice([3, 5, 8]), "seconds": window}
    return {"rate": _round(rng.uniform(0.1, 0.4)), "seconds": window}


def draw_schedule(seed: int) -> list[Fault]:
    """The faults of one run, in time order: 1 to 4 of them, any kinds, within ``HORIZON``."""
    rng = random.Random(seed)
    faults = []
    for _ in range(rng.randint(1, MAX_FAULTS)):
        kind = rng.choice(KINDS)
        faults.append(Fault(_round(rng.uniform(0.0, HORIZON)), kind, _params(rng, kind)))
    return sorted(faults, key=lambda f: f.at)

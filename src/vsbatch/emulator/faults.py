"""Seeded fault injection: which request gets latency, a 503, a 500 after applying, a hang, a drop,
or a gateway's answer instead of Stripe's.

A draw is a pure function of ``(seed, account, method, path, n)``, where ``n`` counts the earlier
draws for the same account, method and path. So the k-th update of a given session meets the same
fate in every run with the same seed, however concurrent requests to other sessions interleave.
Requests refused by the rate limiter are not drawn for.

One uniform number picks at most one fault, in this order of the cumulative shares:
``fail_503``, ``lock_timeout``, ``drop``, ``hang``, ``fail_500_after``, ``gateway``. A second
decides whether a hung, dropped or gatewayed request still reaches Stripe; a third sets the
latency jitter.
"""

from __future__ import annotations

import enum
import hashlib
from typing import NamedTuple

from vsbatch.emulator.config import EmulatorConfig

__all__ = ["NO_FAULT", "Fault", "FaultKind", "FaultPlan"]

_SCALE = float(2**64)


class FaultKind(enum.StrEnum):
    """What happens to one request."""

    NONE = "none"
    FAIL_503 = "fail_503"
    LOCK_TIMEOUT = "lock_timeout"
    DROP = "drop"
    HANG = "hang"
    FAIL_500_AFTER = "fail_500_after"
    GATEWAY = "gateway"


class Fault(NamedTuple):
    """One request's fate: the fault, whether an update still applies, and added latency (s)."""

    kind: FaultKind
    applies: bool
    latency: float


NO_FAULT = Fault(FaultKind.NONE, True, 0.0)


def _share(value: bool | float) -> float:
    return float(value)


class FaultPlan:
    """Draws faults for requests from the config's shares and seed."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self._counts: dict[tuple[str, str, str], int] = {}

    def draw(self, account: str, method: str, path: str) -> Fault:
        """The next fault for a request to this path (NO_FAULT when no fault is configured)."""
        config = self.config
        if not config.has_faults:
            return NO_FAULT
        slot = (account, method, path)
        n = self._counts.get(slot, 0)
        self._counts[slot] = n + 1
        digest = hashlib.blake2b(
            f"{config.seed}|{account}|{method}|{path}|{n}".encode(), digest_size=24
        ).digest()
        pick, apply_roll, jitter_roll = (
            int.from_bytes(digest[i : i + 8], "big") / _SCALE for i in (0, 8, 16)
        )
        latency_ms = config.latency_ms + (2.0 * jitter_roll - 1.0) * config.latency_jitter_ms
        latency = max(0.0, latency_ms) / 1000.0
        kind = FaultKind.NONE
        edge = 0.0
        for candidate, rate in (
            (FaultKind.FAIL_503, config.fail_503_rate),
            (FaultKind.LOCK_TIMEOUT, config.lock_timeout_rate),
            (FaultKind.DROP, config.drop_rate),
            (FaultKind.HANG, config.hang_rate),
            (FaultKind.FAIL_500_AFTER, config.fail_500_after_rate),
            (FaultKind.GATEWAY, config.gateway_rate),
        ):
            edge += rate
            if pick < edge:
                kind = candidate
                break
        applies = True
        if kind is FaultKind.HANG:
            applies = apply_roll < _share(config.hang_applies)
        elif kind is FaultKind.DROP:
            applies = apply_roll < _share(config.drop_applies)
        elif kind is FaultKind.GATEWAY:
            applies = apply_roll < _share(config.gateway_applies)
        return Fault(kind, applies, latency)

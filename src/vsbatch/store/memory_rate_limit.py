"""The in-process rate limiter: :class:`MemoryRateLimiter`, the twin of the fleet's
:class:`~vsbatch.store.rate_limit.RedisRateLimiter` with the same interface and arithmetic
(``gcra_core.lua``'s, in seconds), for one process only: tests and single-process commands
(``plan``'s reads).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from vsbatch.errors import RateLimitBusy
from vsbatch.store.rate_limit import (
    AT_CEILING,
    BACKOFF,
    DEEPEST_CUT,
    MAX_STREAK,
    PROBE,
    Rate,
    RateLimiter,
    Slot,
)

if TYPE_CHECKING:
    from vsbatch.store.locks import Fence

__all__ = ["MemoryRateLimiter"]


class _State:
    """One account's state: the fields of ``gcra.lua``'s hash, in seconds."""

    __slots__ = ("cut_at", "cut_rate", "drew", "first_cut", "hits", "streak", "tat", "window_at")

    def __init__(self) -> None:
        self.tat = 0.0
        self.cut_rate: float | None = None  # pr
        self.cut_at = 0.0  # pt
        self.window_at: float | None = None  # p0
        self.drew: float | None = None  # pw
        self.first_cut = 0.0  # pf
        self.hits = 0  # pk
        self.streak = 0  # ps


class MemoryRateLimiter(RateLimiter):
    """The in-process twin of :class:`RedisRateLimiter` (same arithmetic, seconds).

    Args:
        rate: Requests per second, or a function of the account giving it.
        clock: Monotonic seconds (injected, so tests drive time).
        Other arguments: as :class:`RateLimiter`.
    """

    def __init__(
        self,
        rate: Rate,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        max_wait: float = 30.0,
        probe: float = PROBE,
        min_rate: float = 1.0,
        penalty_window: float = 1.0,
        backoff: float = BACKOFF,
    ) -> None:
        super().__init__(
            rate,
            burst=burst,
            sleep=sleep,
            max_wait=max_wait,
            probe=probe,
            min_rate=min_rate,
            penalty_window=penalty_window,
            backoff=backoff,
        )
        self._clock = clock
        self._states: dict[str | None, _State] = {}
        self._lock = threading.Lock()  # threads of one process share the schedule

    def _slope(self, cfg: float, state: _State) -> float:
        drew = cfg if state.drew is None else state.drew
        return self.probe * drew * 0.5**state.streak

    def _rate_now(self, account: str | None, state: _State, now: float) -> float:
        cfg = self.configured_rate(account)
        if state.cut_rate is None:
            return cfg
        climbed = self._slope(cfg, state) * max(now - state.cut_at, 0.0)
        return min(cfg, state.cut_rate + climbed)

    def _reserve(self, account: str | None, fence: Fence | None = None) -> Slot:
        """Reserve the account's next slot; ``at`` is in the injected clock's seconds (the
        fence is not checked here: ``checks_fence`` is False)."""
        with self._lock:
            now = self._clock()
            state = self._states.setdefault(account, _State())
            interval = 1 / self._rate_now(account, state, now)
            base = max(state.tat, now)
            wait = max(base - (self.burst - 1) * interval - now, 0.0)
            if wait > self.max_wait:
                raise RateLimitBusy(account, wait)
            state.tat = base + interval
            return Slot(wait, now + wait)

    def _penalize(self, account: str | None, reserved_at: float | None) -> None:
        """Cut the account's rate (see :meth:`RateLimiter.penalize`)."""
        with self._lock:
            now = self._clock()
            state = self._states.setdefault(account, _State())
            cut = state.cut_rate is not None
            if cut and reserved_at is not None and reserved_at <= state.cut_at:
                return  # sent at the old rate: the last cut already answered it
            cfg = self.configured_rate(account)
            rate = self._rate_now(account, state, now)
            if state.window_at is not None and now - state.window_at < self.penalty_window:
                state.hits += 1
            else:
                full = rate >= cfg * AT_CEILING
                state.streak = 0 if full else min(state.streak + 1, MAX_STREAK)
                state.drew, state.hits, state.window_at = rate, 1, now
                state.first_cut = self.backoff if full else DEEPEST_CUT
            share = max(DEEPEST_CUT, state.first_cut * self.backoff ** (state.hits - 1))
            drew = cfg if state.drew is None else state.drew
            state.cut_rate = max(min(self.min_rate, cfg), drew * share)
            state.cut_at = now

    def current_rate(self, account: str | None) -> float:
        """The account's effective rate now."""
        with self._lock:
            now = self._clock()
            return self._rate_now(account, self._states.setdefault(account, _State()), now)

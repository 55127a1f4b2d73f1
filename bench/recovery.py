"""How long the fleet's limiter takes to recover after a 429, as it happened in a run.

A :class:`RateTrace` samples each account's effective rate from the limiter's state in Redis
(``RateLimiter.current_rate``, read-only) while a batch runs. :func:`recoveries` turns the
samples into episodes: from the first sample below the configured rate (a 429 cut it) to the
first sample back at it. Cuts while still climbing (a second 429) extend their episode, so
an episode is the whole time the account sent below its ceiling because of 429s.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Sequence
from types import TracebackType

from vsbatch.store.rate_limit import AT_CEILING, RateLimiter

Sample = tuple[float, list[float]]


class RateTrace:
    """Samples ``limiter.current_rate`` of each account every ``every`` seconds, in a thread
    (``with RateTrace(...) as trace:``; the samples are in ``trace.samples``)."""

    def __init__(self, limiter: RateLimiter, accounts: Sequence[str], every: float = 0.05) -> None:
        self.limiter = limiter
        self.accounts = list(accounts)
        self.every = every
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rate-trace", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            self.samples.append((now, [self.limiter.current_rate(a) for a in self.accounts]))
            self._stop.wait(self.every)

    def __enter__(self) -> RateTrace:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()


def recoveries(samples: Sequence[Sample], configured: float) -> list[float]:
    """Seconds each episode below ``configured`` lasted, over every account (see the module
    docstring); an episode still open at the last sample ends there."""
    durations: list[float] = []
    if not samples:
        return durations
    for index in range(len(samples[0][1])):
        since: float | None = None
        for at, rates in samples:
            below = rates[index] < configured * AT_CEILING
            if below and since is None:
                since = at
            elif not below and since is not None:
                durations.append(at - since)
                since = None
        if since is not None:
            durations.append(samples[-1][0] - since)
    return durations


def summary(durations: Sequence[float]) -> tuple[int, float | None, float | None]:
    """(episodes, median seconds, longest seconds); None for the times without an episode."""
    if not durations:
        return 0, None, None
    return len(durations), statistics.median(durations), max(durations)

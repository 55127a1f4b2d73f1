"""How many worker threads a process runs: enough requests in flight to reach the rate.

Each thread sends one request at a time, so by Little's law N threads whose rows take W
seconds each carry at most N / W rows per second: 16 threads at 300 ms top out near 53/s,
whatever the rate limit. Celery's threads pool cannot grow once started (``--autoscale``
needs a pool with ``grow``/``shrink``, which the threads pool lacks), so the pool is sized at
start from the configured rate and a bound on the round trip: ``rate x LATENCY_BOUND``, or
twice a round trip measured by the preflight when that is longer. A thread waiting for its
slot in the rate limiter costs a sleeping thread and an idle connection, so erring high is
cheap; ``MAX_THREADS`` keeps a huge rate from starting thousands.

``VSBATCH_CONCURRENCY`` (``--concurrency``), when set, overrides the sizing. A fleet of
``vsbatch worker`` processes shares one rate per account that no worker can split without
knowing its peers, so each sizes itself for the whole account rate: together they have
more threads than needed, and the shared limiter keeps them to the rate.
"""

from __future__ import annotations

import math

from vsbatch.config import Settings

__all__ = ["LATENCY_BOUND", "MAX_THREADS", "MIN_THREADS", "threads_for", "worker_threads"]

# Seconds per row sized for without a measurement: Stripe's slow updates (about 1 s), the
# row's own Redis round trips (lock, ledger, limiter) and a 429's retry, with room to spare
# (on a loaded 2-core machine, 1.5 s gave 0.91 of the rate at 1 s latency where 2.7 s gave 0.95).
LATENCY_BOUND = 2.0
# A measured round trip is one sample: size for twice it.
MEASURED_FACTOR = 2.0
MIN_THREADS = 16  # the former fixed default: low rates keep it
MAX_THREADS = 256  # about 1,000 messages a second of bookkeeping already at 100/s and 2.5 s


def threads_for(rate: float, latency: float | None = None) -> int:
    """Threads that keep ``rate`` requests per second in flight (pure).

    Args:
        rate: The configured rate, requests per second.
        latency: A measured round trip, seconds; it can only raise the count.

    Returns:
        ``ceil(rate x max(LATENCY_BOUND, 2 x latency))`` within ``MIN_THREADS..MAX_THREADS``.
    """
    bound = LATENCY_BOUND if latency is None else max(LATENCY_BOUND, MEASURED_FACTOR * latency)
    return max(MIN_THREADS, min(MAX_THREADS, math.ceil(rate * bound)))


def worker_threads(settings: Settings, latency: float | None = None) -> int:
    """This process's worker threads: ``settings.concurrency`` if set, else sized for the
    account rate (``settings.effective_rate_limit``) and ``latency`` (see :func:`threads_for`)."""
    if settings.concurrency is not None:
        return settings.concurrency
    return threads_for(settings.effective_rate_limit, latency)

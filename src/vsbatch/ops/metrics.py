"""Prometheus metrics: what one worker process counts, and the HTTP endpoint serving them.

Every series has an ``account`` label (the Stripe-Account, or ``platform`` for your own
account). Names and labels are documented in ``docs/operations.md``:

- ``vsbatch_rows_total{outcome,reason,account}``: rows this process brought to an outcome.
- ``vsbatch_attempts_total{result,account}``: update requests sent; ``result`` is ``ok`` or
  the retry policy's reason for the failure (``rate_limit``, ``server_error``, ``timeout``...).
- ``vsbatch_retries_total{reason,account}``: attempts that were retried under the same key.
- ``vsbatch_stripe_request_seconds{status,account}``: update latency by HTTP status
  (``connection`` when no answer came back).
- ``vsbatch_limiter_wait_seconds{account}``: time spent waiting for a rate-limiter slot.
- ``vsbatch_rows_in_flight{account}``: rows this process is working on now.

The instruments live in the process's default registry; the domain code calls the small
functions below (a no-op cost when nobody scrapes).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, start_http_server

__all__ = [
    "ATTEMPTS",
    "IN_FLIGHT",
    "LIMITER_WAIT",
    "RETRIES",
    "ROWS",
    "STRIPE_LATENCY",
    "in_flight",
    "observe_attempt",
    "observe_limiter_wait",
    "observe_retry",
    "observe_row",
    "serve",
]

PLATFORM = "platform"

ROWS = Counter("vsbatch_rows", "Rows brought to an outcome.", ["outcome", "reason", "account"])
ATTEMPTS = Counter(
    "vsbatch_attempts", "Update requests sent to Stripe, by result.", ["result", "account"]
)
RETRIES = Counter(
    "vsbatch_retries", "Attempts retried under the same idempotency key.", ["reason", "account"]
)
STRIPE_LATENCY = Histogram(
    "vsbatch_stripe_request_seconds",
    "Latency of update requests to Stripe, by HTTP status.",
    ["status", "account"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
LIMITER_WAIT = Histogram(
    "vsbatch_limiter_wait_seconds",
    "Time spent waiting for a slot of the fleet-wide rate limiter.",
    ["account"],
    buckets=(0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
IN_FLIGHT = Gauge("vsbatch_rows_in_flight", "Rows this process is working on.", ["account"])


def _account(account: str | None) -> str:
    return account or PLATFORM


# One series per label values, looked up once: ``labels()`` validates and locks on every
# call, which was 2 % of a worker's CPU per row. The label values are few (outcomes,
# reasons, statuses, accounts); the series are never removed from the registry.
@functools.lru_cache(maxsize=4096)
def _series(metric: Any, *values: str) -> Any:
    return metric.labels(*values)


def observe_row(outcome: str, reason: str | None, account: str | None) -> None:
    """Count one row that reached ``outcome`` (``reason`` may be None)."""
    _series(ROWS, outcome, reason or "", _account(account)).inc()


def observe_attempt(
    result: str, status: int | str | None, seconds: float, account: str | None
) -> None:
    """Count one update request and its latency (``status`` None: no answer came back)."""
    _series(ATTEMPTS, result, _account(account)).inc()
    _series(STRIPE_LATENCY, str(status or "connection"), _account(account)).observe(seconds)


def observe_retry(reason: str, account: str | None) -> None:
    """Count one retry under the same key, by the retry policy's reason."""
    _series(RETRIES, reason, _account(account)).inc()


def observe_limiter_wait(seconds: float, account: str | None) -> None:
    """Record the time one request waited for its rate-limiter slot."""
    _series(LIMITER_WAIT, _account(account)).observe(max(0.0, seconds))


@contextlib.contextmanager
def in_flight(account: str | None) -> Iterator[None]:
    """Count a row as in flight for the duration of the block."""
    gauge = _series(IN_FLIGHT, _account(account))
    gauge.inc()
    try:
        yield
    finally:
        gauge.dec()


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` on ``host:port`` from a daemon thread of this process."""
    start_http_server(port, addr=host)

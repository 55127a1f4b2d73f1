"""When to retry a Stripe call, and how long to wait: a pure predicate plus tenacity strategies.

:func:`decide` looks at one error and says whether to try again and whether the update may
have been applied (``ambiguous``: the worker then reads the session back instead of
guessing), and whether the answer is one that may ever lead to a new idempotency key
(``stored``). :class:`RetryPolicy` turns that into a ``tenacity.Retrying`` bounded in attempts
and in total time, measured on an injected clock so that tests never sleep.

The caller passes the same idempotency key on every attempt: ``Retrying`` only re-calls the
function it was given, so a retried update is replayed by Stripe rather than applied twice.

Which answers may ever lead to a new key: only a 500 that Stripe itself marked as stored
(``Stripe-Should-Retry: false`` and a Stripe error body). Such a request has finished, so a
read-back without the change proves it was not applied. Any other 5xx (a gateway's 502/504,
an HTML page, no Stripe headers) and any transport error may hide a request that Stripe is
still executing: it is retried under the same key, and the key is kept when the budget ends.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import tenacity
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from vsbatch.errors import (
    APIConnectionError,
    IdempotencyError,
    RateLimitError,
    StripeError,
)

if TYPE_CHECKING:
    from vsbatch.config import Settings

__all__ = ["Decision", "RetryPolicy", "decide", "is_stored_500"]

logger = logging.getLogger(__name__)

IDEMPOTENCY_KEY_IN_USE = "idempotency_key_in_use"


@dataclass(frozen=True)
class Decision:
    """What to do about one failed attempt.

    Attributes:
        retry: try again (under the same idempotency key).
        ambiguous: the update may or may not have been applied; read it back to know.
        reason: a short machine word for logs and the ledger (``rate_limit``, ``timeout``...).
        stored: Stripe finished the request and stored its answer (a 500 marked
            ``Stripe-Should-Retry: false`` with a Stripe error body): the only answer after
            which a read-back without the change allows a new idempotency key.
    """

    retry: bool
    ambiguous: bool
    reason: str
    stored: bool = False


def is_stored_500(error: StripeError) -> bool:
    """A 500 that Stripe itself marked as stored: ``Stripe-Should-Retry: false``, error body."""
    body = error.json_body
    return (
        not isinstance(error, APIConnectionError)
        and error.http_status == 500
        and error.should_retry is False
        and isinstance(body, dict)
        and isinstance(body.get("error"), dict)
    )


def _classify(error: StripeError) -> Decision:
    """The decision from the error's kind and status alone, before the server's advice."""
    status = error.http_status
    if isinstance(error, APIConnectionError):
        timed_out = isinstance(error.__cause__, httpx.TimeoutException)
        reason = "timeout" if timed_out else "connection"
        return Decision(retry=True, ambiguous=error.may_have_applied, reason=reason)
    if status == 409:
        # The first request with this key is still running: it may yet apply the update.
        return Decision(True, error.code == IDEMPOTENCY_KEY_IN_USE, "conflict")
    if status == 429 or isinstance(error, RateLimitError):
        reason = "lock_timeout" if error.code == "lock_timeout" else "rate_limit"
        return Decision(retry=True, ambiguous=False, reason=reason)
    if status is not None and status >= 500:
        # Stripe may have started executing; only an explicit "retry" says it did not.
        return Decision(True, error.should_retry is not True, "server_error")
    if isinstance(error, IdempotencyError):
        return Decision(retry=False, ambiguous=False, reason="idempotency_error")
    if status is not None and 400 <= status < 500:
        return Decision(retry=False, ambiguous=False, reason="client_error")
    # A 2xx that is not our session (another object or id, or no JSON) may hide an applied
    # update: try again under the same key (Stripe replays its stored answer), then read back.
    applied = status is not None and 200 <= status < 300
    return Decision(retry=applied, ambiguous=applied, reason="unexpected")


def decide(error: BaseException) -> Decision:
    """Whether to retry after ``error``, and whether its update may have been applied.

    ``Stripe-Should-Retry``, when the server sent it, wins for ``retry`` (the reason becomes
    ``server_advice`` when it overrules the table). Otherwise connection errors, 409, 429
    and 5xx are retried; other 4xx, idempotency errors and non-Stripe errors are not.

    Args:
        error: the exception one attempt raised.

    Returns:
        The decision; never raises.
    """
    if not isinstance(error, StripeError):
        return Decision(retry=False, ambiguous=False, reason="internal")
    table = _classify(error)
    stored = is_stored_500(error)
    if error.should_retry is None or error.should_retry == table.retry:
        return Decision(table.retry, table.ambiguous, table.reason, stored)
    return Decision(error.should_retry, table.ambiguous, "server_advice", stored)


def _should_retry(error: BaseException) -> bool:
    return decide(error).retry


class _Elapsed:
    """Start times of retry runs on an injected clock (tenacity's own use ``time.monotonic``)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._starts: weakref.WeakKeyDictionary[tenacity.RetryCallState, float] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def mark(self, retry_state: tenacity.RetryCallState) -> None:
        """Record the start of a run (called before every attempt; only the first counts)."""
        with self._lock:
            self._starts.setdefault(retry_state, self.clock())

    def since_start(self, retry_state: tenacity.RetryCallState) -> float:
        """Seconds since the run's first attempt began."""
        with self._lock:
            start = self._starts.setdefault(retry_state, self.clock())
        return self.clock() - start


class StopAfterBudget(stop_base):
    """Stop after ``max_attempts``, or when the next wait would end past ``max_seconds``."""

    def __init__(self, max_attempts: int, max_seconds: float, elapsed: _Elapsed) -> None:
        self.max_attempts = max_attempts
        self.max_seconds = max_seconds
        self.elapsed = elapsed

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        if retry_state.attempt_number >= self.max_attempts:
            return True
        spent = self.elapsed.since_start(retry_state)
        return spent + retry_state.upcoming_sleep > self.max_seconds


class StripeBackoff(wait_base):
    """Stripe's backoff: ``min(initial * 2**(n-1), max_wait)`` with 50-100 % jitter.

    The floor is ``initial_wait`` (as in stripe-python). An error's ``retry_after`` (the
    ``Retry-After`` header) replaces the computed wait; the total-time stop still bounds it.
    """

    def __init__(self, initial_wait: float, max_wait: float, rng: random.Random) -> None:
        self.initial_wait = initial_wait
        self.max_wait = max_wait
        self.rng = rng

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None and outcome.failed else None
        if isinstance(error, StripeError) and error.retry_after is not None:
            return max(0.0, error.retry_after)
        ceiling = min(self.initial_wait * 2.0 ** (retry_state.attempt_number - 1), self.max_wait)
        jittered = ceiling * (0.5 + 0.5 * self.rng.random())
        return max(min(self.initial_wait, self.max_wait), jittered)


# The jitter's one random source: seeding a new ``random.Random()`` for every row's
# ``retrying()`` read the OS entropy pool each time (3 % of a worker's CPU per row).
_JITTER = random.Random()


def _log_retry(retry_state: tenacity.RetryCallState) -> None:
    outcome = retry_state.outcome
    error = outcome.exception() if outcome is not None and outcome.failed else None
    if error is not None:
        logger.info(
            "retrying after %s (%s), attempt %d, waiting %.2fs",
            type(error).__name__,
            decide(error).reason,
            retry_state.attempt_number,
            retry_state.upcoming_sleep,
        )


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds and backoff for retrying one Stripe call.

    Attributes:
        max_attempts: attempts in all, the first included.
        max_seconds: total time budget, waits included, on the retrying's clock.
        initial_wait: the first backoff, in seconds (also the floor of every backoff).
        max_wait: the cap of one computed backoff, in seconds.
    """

    max_attempts: int = 6
    max_seconds: float = 60.0
    initial_wait: float = 0.5
    max_wait: float = 8.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy the settings describe (``VSBATCH_MAX_ATTEMPTS``, ``VSBATCH_RETRY_*``)."""
        return cls(
            max_attempts=settings.max_attempts,
            max_seconds=settings.retry_max_seconds,
            initial_wait=settings.retry_initial_wait,
            max_wait=settings.retry_max_wait,
        )

    def retrying(
        self,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        before_sleep: Callable[[tenacity.RetryCallState], None] | None = None,
        rng: random.Random | None = None,
    ) -> tenacity.Retrying:
        """A ``tenacity.Retrying`` that retries only what :func:`decide` says to.

        Use it as ``policy.retrying()(client.update, sid, params, idempotency_key=key)`` or
        ``for attempt in policy.retrying(): with attempt: ...``. The last error is re-raised
        as itself (``reraise=True``), never wrapped in ``tenacity.RetryError``.

        Args:
            sleep: how to wait (a fake in tests).
            clock: the clock the total-time budget is measured on (a fake in tests).
            before_sleep: called before each wait, after vsbatch's own log line.
            rng: the jitter's random source (seeded in tests).

        Returns:
            A fresh ``tenacity.Retrying``; one may serve many calls.
        """
        elapsed = _Elapsed(clock)

        def announce(retry_state: tenacity.RetryCallState) -> None:
            _log_retry(retry_state)
            if before_sleep is not None:
                before_sleep(retry_state)

        return tenacity.Retrying(
            sleep=sleep,
            stop=StopAfterBudget(self.max_attempts, self.max_seconds, elapsed),
            wait=StripeBackoff(self.initial_wait, self.max_wait, rng or _JITTER),
            retry=tenacity.retry_if_exception(_should_retry),
            before=elapsed.mark,
            before_sleep=announce,
            reraise=True,
        )

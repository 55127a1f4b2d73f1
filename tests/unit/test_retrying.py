"""Unit tests of the tenacity strategies built from a RetryPolicy (fake clock, no sleeping): the
one idempotency key, the time budget, Retry-After, backoff and the settings.
"""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
import tenacity

from tests.fakes import FakeTime
from tests.unit.stripe_answers import IR, KEY, answer
from vsbatch.config import Settings
from vsbatch.errors import APIError, InvalidRequestError, RateLimitError
from vsbatch.stripe.client import StripeClient
from vsbatch.stripe.retry import Decision, RetryPolicy, decide

SESSION = {
    "id": "vs_123",
    "object": "identity.verification_session",
    "created": 1234567890,
    "livemode": False,
    "metadata": {},
    "status": "requires_input",
    "type": "document",
}


class Script:
    """A function that raises or returns each outcome in turn (the last one forever)."""

    def __init__(self, *outcomes: BaseException | str) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def retrying(policy: RetryPolicy, fake: FakeTime, **kwargs: Any) -> tenacity.Retrying:
    """The policy's Retrying on fake time with a seeded jitter."""
    return policy.retrying(sleep=fake.sleep, clock=fake.clock, rng=random.Random(7), **kwargs)


class TestRetrying:
    def test_same_idempotency_key_on_every_attempt(self) -> None:
        """Retries of one update (503, 503, 200) all carry the caller's one idempotency key."""
        # Given a Stripe that fails twice before applying the update
        keys: list[str | None] = []
        script = [503, 503, 200]

        def handler(request: httpx.Request) -> httpx.Response:
            keys.append(request.headers.get("Idempotency-Key"))
            status = script.pop(0)
            if status == 200:
                return httpx.Response(200, json=SESSION)
            body = {"error": {"type": "api_error", "message": "unavailable"}}
            return httpx.Response(status, json=body, headers={"Stripe-Should-Retry": "true"})

        client = StripeClient(KEY, transport=httpx.MockTransport(handler))
        fake = FakeTime()

        # When the update is retried under the policy
        session = retrying(RetryPolicy(), fake)(
            client.update, "vs_123", [("metadata[a]", "1")], idempotency_key="row-1-key"
        )

        # Then every attempt carried the same key
        assert (["row-1-key"] * 3, "vs_123") == (keys, session.id)

    def test_total_time_stays_within_max_seconds(self) -> None:
        """With endless failures, attempts stop before the fake time passes max_seconds."""
        fake = FakeTime()
        policy = RetryPolicy(max_attempts=100, max_seconds=10.0, initial_wait=0.5, max_wait=4.0)
        attempt = Script(answer(503, should_retry="true"))

        with pytest.raises(APIError):
            retrying(policy, fake)(attempt)

        assert (True, True) == (fake.now <= 10.0, attempt.calls > 3)

    def test_slow_attempts_count_against_the_budget(self) -> None:
        """Time spent inside attempts (by the injected clock) counts toward max_seconds."""
        fake = FakeTime()
        policy = RetryPolicy(max_attempts=100, max_seconds=10.0, initial_wait=0.0, max_wait=0.0)

        def attempt() -> str:
            fake.now += 4.0
            raise answer(500, should_retry="true")

        with pytest.raises(APIError):
            retrying(policy, fake)(attempt)

        assert 12.0 == fake.now

    def test_stops_after_max_attempts_with_the_last_error(self) -> None:
        """After max_attempts the last StripeError itself is raised, not tenacity's RetryError."""
        fake = FakeTime()
        attempt = Script(answer(429, IR, "rate_limit"))

        with pytest.raises(RateLimitError):
            retrying(RetryPolicy(max_attempts=3), fake)(attempt)

        assert (3, 2) == (attempt.calls, len(fake.sleeps))

    def test_each_call_gets_its_own_time_budget(self) -> None:
        """One Retrying reused for a second call measures that call from its own start."""
        fake = FakeTime()
        policy = RetryPolicy(max_attempts=100, max_seconds=5.0, initial_wait=1.0, max_wait=1.0)
        runner = retrying(policy, fake)
        with pytest.raises(APIError):
            runner(Script(answer(500)))
        fake.now += 100.0
        second = Script(answer(500), answer(500), "done")

        assert "done" == runner(second)

    def test_retry_after_is_honoured(self) -> None:
        """A 429 with Retry-After: 7 waits exactly 7 seconds before the next attempt."""
        fake = FakeTime()
        limited = answer(429, IR, "rate_limit")
        limited.retry_after = 7.0

        result = retrying(RetryPolicy(), fake)(Script(limited, "ok"))

        assert ("ok", [7.0]) == (result, fake.sleeps)

    def test_retry_after_beyond_the_budget_stops_at_once(self) -> None:
        """A Retry-After longer than the time budget ends the retries without sleeping."""
        fake = FakeTime()
        limited = answer(429, IR, "rate_limit")
        limited.retry_after = 120.0
        attempt = Script(limited, "ok")

        with pytest.raises(RateLimitError):
            retrying(RetryPolicy(max_seconds=60.0), fake)(attempt)

        assert (1, []) == (attempt.calls, fake.sleeps)

    def test_non_retryable_error_stops_at_once(self) -> None:
        """A 400 is raised after one attempt, without sleeping."""
        fake = FakeTime()
        attempt = Script(answer(400, IR, "parameter_unknown"), "ok")

        with pytest.raises(InvalidRequestError):
            retrying(RetryPolicy(), fake)(attempt)

        assert (1, []) == (attempt.calls, fake.sleeps)

    def test_ambiguous_500_is_not_retried(self) -> None:
        """A replayed 500 with Stripe-Should-Retry: false is raised after one attempt."""
        fake = FakeTime()
        attempt = Script(answer(500, should_retry="false"), "ok")

        with pytest.raises(APIError) as caught:
            retrying(RetryPolicy(), fake)(attempt)

        assert (1, Decision(False, True, "server_advice", stored=True)) == (
            attempt.calls,
            decide(caught.value),
        )

    def test_non_stripe_errors_are_not_retried(self) -> None:
        """A bug (ValueError) propagates after one attempt."""
        fake = FakeTime()
        attempt = Script(ValueError("bug"), "ok")

        with pytest.raises(ValueError):
            retrying(RetryPolicy(), fake)(attempt)

        assert 1 == attempt.calls

    def test_backoff_is_exponential_jittered_and_capped(self) -> None:
        """Wait n lies in [max(initial, c/2), c] with c = min(initial * 2**(n-1), max_wait)."""
        fake = FakeTime()
        policy = RetryPolicy(max_attempts=7, max_seconds=1000.0, initial_wait=0.5, max_wait=4.0)

        with pytest.raises(APIError):
            retrying(policy, fake)(Script(answer(500)))

        ceilings = [min(0.5 * 2**n, 4.0) for n in range(6)]
        assert [True] * 6 == [
            max(0.5, c / 2) <= s <= c for s, c in zip(fake.sleeps, ceilings, strict=True)
        ]

    def test_before_sleep_is_called_before_each_wait(self) -> None:
        """The caller's before_sleep hook sees every retry (ledger 'retrying' updates)."""
        fake = FakeTime()
        seen: list[int] = []

        retrying(RetryPolicy(), fake, before_sleep=lambda rs: seen.append(rs.attempt_number))(
            Script(answer(502), answer(502), "ok")
        )

        assert [1, 2] == seen

    def test_works_as_an_attempt_iterator(self) -> None:
        """``for attempt in retrying(): with attempt:`` retries the block the same way."""
        fake = FakeTime()
        attempt = Script(answer(503, should_retry="true"), "ok")
        result = None

        for try_ in retrying(RetryPolicy(), fake):
            with try_:
                result = attempt()

        assert ("ok", 2) == (result, attempt.calls)


class TestPolicy:
    def test_from_settings_reads_the_retry_settings(self) -> None:
        """from_settings maps max_attempts and the retry_* settings onto the policy."""
        settings = Settings(
            max_attempts=3,
            retry_max_seconds=9.0,
            retry_initial_wait=0.25,
            retry_max_wait=2.0,
            _env_file=None,
        )

        assert RetryPolicy(3, 9.0, 0.25, 2.0) == RetryPolicy.from_settings(settings)

    def test_defaults_are_bounded(self) -> None:
        """The default policy bounds both attempts and total time."""
        assert RetryPolicy(6, 60.0, 0.5, 8.0) == RetryPolicy()

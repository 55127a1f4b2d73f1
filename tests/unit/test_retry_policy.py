"""Unit tests of the retry predicate and the tenacity strategies (fake clock, no sleeping)."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
import tenacity

from tests.fakes import FakeTime
from vsbatch.config import Settings
from vsbatch.errors import (
    APIConnectionError,
    APIError,
    InvalidRequestError,
    RateLimitError,
    SessionBusyError,
    StripeError,
)
from vsbatch.stripe.answers import error_from_response
from vsbatch.stripe.client import StripeClient
from vsbatch.stripe.retry import Decision, RetryPolicy, decide

KEY = "sk_test_SECRETSECRET"
SESSION = {
    "id": "vs_123",
    "object": "identity.verification_session",
    "created": 1234567890,
    "livemode": False,
    "metadata": {},
    "status": "requires_input",
    "type": "document",
}


def answer(
    status: int, kind: str = "api_error", code: str | None = None, should_retry: str | None = None
) -> StripeError:
    """The error the client maps this answer to."""
    headers = {"Request-Id": "req_1"}
    if should_retry is not None:
        headers["Stripe-Should-Retry"] = should_retry
    body = {"error": {"type": kind, "code": code, "message": "m"}}
    return error_from_response(httpx.Response(status, json=body, headers=headers))


def connection(exc_cls: type[Exception], method: str) -> StripeError:
    """The APIConnectionError the client raises when ``exc_cls`` interrupts ``method``."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_cls("boom", request=request)  # type: ignore[call-arg]

    client = StripeClient(KEY, transport=httpx.MockTransport(handler))
    with pytest.raises(APIConnectionError) as caught:
        if method == "POST":
            client.update("vs_123", [], idempotency_key="k")
        else:
            client.retrieve("vs_123")
    return caught.value


IR = "invalid_request_error"
IDEM = "idempotency_error"
IN_USE = "idempotency_key_in_use"

# (httpx failure, method) -> (retry, ambiguous, reason): ambiguous only when a POST may
# have reached Stripe.
CONNECTION_TABLE: list[tuple[type[Exception], str, bool, bool, str]] = [
    (httpx.ConnectError, "POST", True, False, "connection"),
    (httpx.ConnectTimeout, "POST", True, False, "timeout"),
    (httpx.PoolTimeout, "POST", True, False, "timeout"),
    (httpx.ReadTimeout, "POST", True, True, "timeout"),
    (httpx.WriteTimeout, "POST", True, True, "timeout"),
    (httpx.RemoteProtocolError, "POST", True, True, "connection"),
    (httpx.ReadError, "POST", True, True, "connection"),
    (httpx.ConnectError, "GET", True, False, "connection"),
    (httpx.ReadTimeout, "GET", True, False, "timeout"),
    (httpx.RemoteProtocolError, "GET", True, False, "connection"),
]

# (status, error type, code, Stripe-Should-Retry) -> (retry, ambiguous, reason)
ANSWER_TABLE: list[tuple[int, str, str | None, str | None, bool, bool, str]] = [
    (409, IDEM, IN_USE, None, True, True, "conflict"),
    (409, IR, "conflict", None, True, False, "conflict"),
    (409, IDEM, IN_USE, "false", False, True, "server_advice"),
    (429, IR, "rate_limit", None, True, False, "rate_limit"),
    (429, IR, "lock_timeout", "true", True, False, "lock_timeout"),
    (429, IR, "rate_limit", "false", False, False, "server_advice"),
    (400, IR, "rate_limit", None, True, False, "rate_limit"),
    (500, "api_error", None, None, True, True, "server_error"),
    (500, "api_error", None, "false", False, True, "server_advice"),
    (500, "api_error", None, "true", True, False, "server_error"),
    (502, "api_error", None, None, True, True, "server_error"),
    (503, "api_error", None, "true", True, False, "server_error"),
    (503, "api_error", None, "false", False, True, "server_advice"),
    (504, "api_error", None, None, True, True, "server_error"),
    (400, IR, "parameter_unknown", None, False, False, "client_error"),
    (400, IR, None, "true", True, False, "server_advice"),
    (400, IDEM, None, None, False, False, "idempotency_error"),
    (401, IR, None, None, False, False, "client_error"),
    (402, "card_error", "card_declined", None, False, False, "client_error"),
    (403, IR, None, None, False, False, "client_error"),
    (404, IR, "resource_missing", None, False, False, "client_error"),
    (404, IR, "resource_missing", "false", False, False, "client_error"),
]

# Odd answers and errors that are not Stripe's.
OTHER_TABLE: list[tuple[str, BaseException, Decision]] = [
    (
        "200-not-our-session",
        APIError("bad body", http_status=200),
        Decision(True, True, "unexpected"),
    ),
    ("no-status", APIError("odd"), Decision(False, False, "unexpected")),
    ("value-error", ValueError("bug"), Decision(False, False, "internal")),
    ("session-busy", SessionBusyError("locked"), Decision(False, False, "internal")),
    ("keyboard-interrupt", KeyboardInterrupt(), Decision(False, False, "internal")),
]


class TestDecide:
    @pytest.mark.parametrize(
        ("exc_cls", "method", "retry", "ambiguous", "reason"), CONNECTION_TABLE
    )
    def test_connection_failures(
        self, exc_cls: type[Exception], method: str, retry: bool, ambiguous: bool, reason: str
    ) -> None:
        """Connection failures are retried; ambiguous when a POST may have been sent."""
        error = connection(exc_cls, method)

        assert Decision(retry, ambiguous, reason) == decide(error)

    @pytest.mark.parametrize(
        ("status", "kind", "code", "header", "retry", "ambiguous", "reason"), ANSWER_TABLE
    )
    def test_answers(
        self,
        status: int,
        kind: str,
        code: str | None,
        header: str | None,
        retry: bool,
        ambiguous: bool,
        reason: str,
    ) -> None:
        """Each status, code and Stripe-Should-Retry header gives the tabled decision."""
        error = answer(status, kind, code, header)

        decision = decide(error)
        assert (retry, ambiguous, reason) == (decision.retry, decision.ambiguous, decision.reason)

    @pytest.mark.parametrize(
        ("error", "expected"),
        [(error, expected) for _name, error, expected in OTHER_TABLE],
        ids=[name for name, _error, _expected in OTHER_TABLE],
    )
    def test_other_errors(self, error: BaseException, expected: Decision) -> None:
        """A 2xx that is not our session is retried (same key); non-Stripe errors never are."""
        assert expected == decide(error)

    def test_should_retry_header_wins_over_the_class(self) -> None:
        """A hand-built error with should_retry=True is retried whatever its class."""
        error = InvalidRequestError("x", http_status=400, should_retry=True)

        assert decide(error).retry is True


def gateway(status: int, should_retry: str | None = None) -> StripeError:
    """The error the client maps a proxy's HTML page (no Stripe error body) to."""
    headers = {"Stripe-Should-Retry": should_retry} if should_retry else {}
    page = b"<html><body><h1>Bad Gateway</h1></body></html>"
    return error_from_response(
        httpx.Response(status, content=page, headers={"Content-Type": "text/html", **headers})
    )


class TestNewKey:
    """Only a 500 Stripe marked as stored may ever lead to a new idempotency key."""

    def test_stored_500_may_lead_to_a_new_key(self) -> None:
        """A 500 with Stripe-Should-Retry: false and a Stripe error body is stored."""
        assert decide(answer(500, should_retry="false")).stored is True

    @pytest.mark.parametrize(
        "error",
        [
            answer(500),
            answer(500, should_retry="true"),
            answer(503, should_retry="false"),
            gateway(502),
            gateway(504),
            gateway(500, should_retry="false"),
            APIError("not our session", http_status=200),
            APIConnectionError("read timeout", may_have_applied=True, http_status=500),
        ],
        ids=[
            "500-no-advice",
            "500-retry-true",
            "503-false",
            "gateway-502",
            "gateway-504",
            "html-500-false",
            "200-not-ours",
            "connection",
        ],
    )
    def test_anything_else_keeps_the_key(self, error: StripeError) -> None:
        """Any other 5xx, odd 200 or transport error is not stored: the key must be kept."""
        assert decide(error).stored is False

    @pytest.mark.parametrize("status", [502, 504])
    def test_gateway_5xx_is_retried_as_ambiguous(self, status: int) -> None:
        """A gateway's HTML 502/504 is retried under the same key and may have applied."""
        decision = decide(gateway(status))

        assert (True, True) == (decision.retry, decision.ambiguous)


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

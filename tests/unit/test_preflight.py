"""Preflight: the verdict on each kind of answer, and the one-line error it becomes."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import pytest

from vsbatch.config import Settings
from vsbatch.errors import ConfigError
from vsbatch.stripe.preflight import PREFLIGHT_PATH, Verdict, check, classify, classify_error

KEY = "sk_test_abc0123456789SECRET"
LIST = {
    "object": "list",
    "data": [],
    "has_more": False,
    "url": "/v1/identity/verification_sessions",
}


def _error(code: str | None, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"type": kind, "code": code, "message": f"Invalid API Key provided: {KEY}"}}


def _settings() -> Settings:
    return Settings(_env_file=None, stripe_api_key=KEY, stripe_api_base="https://stripe.test")


class TestClassify:
    def test_a_list_is_ok(self) -> None:
        """Stripe's list object is a usable answer."""
        assert Verdict(ok=True) == classify(httpx.Response(200, json=LIST))

    @pytest.mark.parametrize(
        ("response", "expected", "retry"),
        [
            (httpx.Response(401, json=_error(None)), "API key was refused (HTTP 401", False),
            (httpx.Response(403, json=_error("secret_key_required")), "HTTP 403", False),
            (httpx.Response(429, json=_error("rate_limit")), "busy or failing", True),
            (httpx.Response(503, json=_error(None, "api_error")), "HTTP 503", True),
            (httpx.Response(404, json=_error("resource_missing")), "refused the request", False),
            (httpx.Response(200, html="<html>It works!</html>"), "not Stripe's", False),
            (httpx.Response(200, json={"id": "vs_1"}), "not Stripe's (HTTP 200", False),
            (httpx.Response(404, text="Not Found"), "not Stripe's (HTTP 404", False),
            (httpx.Response(301, headers={"Location": "https://x"}), "not Stripe's", False),
        ],
        ids=["401", "403", "429", "503", "404-stripe", "html", "json-not-list", "404-text", "301"],
    )
    def test_refusals(self, response: httpx.Response, expected: str, retry: bool) -> None:
        """Every answer but a list is refused with a cause; only 429/5xx may be retried."""
        verdict = classify(response)

        assert (False, True, retry) == (verdict.ok, expected in verdict.cause, verdict.retry)
        assert "SECRET" not in verdict.cause

    def test_tls_failure_is_named(self) -> None:
        """A certificate failure under a ConnectError is reported as TLS with its reason."""
        cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
        cause.reason = "CERTIFICATE_VERIFY_FAILED"
        error = httpx.ConnectError("boom")
        error.__cause__ = cause

        assert "TLS failed (CERTIFICATE_VERIFY_FAILED)" == classify_error(error).cause

    def test_refused_connection_is_named(self) -> None:
        """A plain ConnectError says the base cannot be reached, not to retry."""
        verdict = classify_error(httpx.ConnectError("[Errno 111] Connection refused"))

        assert (False, False) == (verdict.ok, verdict.retry)
        assert verdict.cause.startswith("cannot connect")


class TestCheck:
    def test_sends_one_authenticated_list_request(self) -> None:
        """The preflight is one GET of the list with limit 1 and the key as Bearer."""
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json=LIST)

        check(_settings(), transport=httpx.MockTransport(handler))

        assert 1 == len(seen)
        assert ("GET", f"https://stripe.test{PREFLIGHT_PATH}", f"Bearer {KEY}") == (
            seen[0].method,
            str(seen[0].url),
            seen[0].headers["Authorization"],
        )

    def test_refusal_is_one_line_naming_url_and_cause(self) -> None:
        """A 401 becomes a ConfigError naming the URL and the cause, without the key."""
        transport = httpx.MockTransport(lambda _r: httpx.Response(401, json=_error(None)))

        with pytest.raises(ConfigError) as caught:
            check(_settings(), transport=transport)

        message = str(caught.value)
        assert message.startswith(f"preflight GET https://stripe.test{PREFLIGHT_PATH} failed: ")
        assert "HTTP 401" in message and "\n" not in message and "SECRET" not in message
        assert 2 == caught.value.exit_code

    def test_busy_stripe_is_tried_three_times_then_refused(self) -> None:
        """429s are retried twice with short injected waits, then reported."""
        answers = [httpx.Response(429, json=_error("rate_limit"))] * 3
        waits: list[float] = []
        transport = httpx.MockTransport(lambda _r: answers.pop())

        with pytest.raises(ConfigError, match="HTTP 429"):
            check(_settings(), transport=transport, sleep=waits.append)

        assert ([], [0.5, 1.0]) == (answers, waits)

    def test_busy_then_ok_passes(self) -> None:
        """A 503 followed by a list passes."""
        answers = [httpx.Response(200, json=LIST), httpx.Response(503, json=_error(None))]
        transport = httpx.MockTransport(lambda _r: answers.pop())

        check(_settings(), transport=transport, sleep=lambda _s: None)

        assert [] == answers

    def test_returns_the_round_trip_of_the_answer_that_passed(self) -> None:
        """check returns the seconds the usable answer took (injected clock)."""
        ticks = iter([10.0, 10.4, 20.0, 21.25])
        answers = [httpx.Response(200, json=LIST), httpx.Response(503, json=_error(None))]
        transport = httpx.MockTransport(lambda _r: answers.pop())

        seconds = check(
            _settings(), transport=transport, sleep=lambda _s: None, clock=lambda: next(ticks)
        )

        assert 1.25 == seconds


class TestTimeouts:
    def test_a_timeout_is_not_tried_again(self) -> None:
        """A request that timed out is reported at once, as no complete answer, not retried."""
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            raise httpx.ReadTimeout("slow", request=request)

        with pytest.raises(ConfigError, match="no complete answer within"):
            check(_settings(), transport=httpx.MockTransport(handler), sleep=lambda _s: None)

        assert 1 == len(seen)

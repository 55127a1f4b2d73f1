"""Unit tests of the retry predicate: which failures are retried, ambiguous or stored (the
decision tables, gateways' pages and the new-key rule).
"""

from __future__ import annotations

import httpx
import pytest

from tests.unit.stripe_answers import IR, KEY, answer
from vsbatch.errors import (
    APIConnectionError,
    APIError,
    InvalidRequestError,
    SessionBusyError,
    StripeError,
)
from vsbatch.stripe.answers import error_from_response
from vsbatch.stripe.client import StripeClient
from vsbatch.stripe.retry import Decision, decide


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

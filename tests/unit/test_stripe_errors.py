"""Unit tests of the Stripe client's errors over ``httpx.MockTransport`` (no sockets): Stripe's
error answers, transport failures, and the API key kept out of every one of them.
"""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from tests.unit.stripe_mock import KEY, Handler, Recorder, error_json, make_client, ok, session_json
from vsbatch.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    CardError,
    ConfigError,
    IdempotencyError,
    InvalidRequestError,
    PermissionDeniedError,
    RateLimitError,
    StripeError,
)
from vsbatch.stripe.client import StripeClient

ERROR_CASES = [
    (400, "invalid_request_error", "parameter_unknown", "foo", InvalidRequestError),
    (400, "idempotency_error", None, None, IdempotencyError),
    (400, "invalid_request_error", "rate_limit", None, RateLimitError),
    (401, "invalid_request_error", None, None, AuthenticationError),
    (402, "card_error", "card_declined", None, CardError),
    (403, "invalid_request_error", "secret_key_required", None, PermissionDeniedError),
    (404, "invalid_request_error", "resource_missing", "id", InvalidRequestError),
    (409, "idempotency_error", "idempotency_key_in_use", None, IdempotencyError),
    (409, "invalid_request_error", "lock_conflict", None, APIError),
    (429, "invalid_request_error", "rate_limit", None, RateLimitError),
    (429, "invalid_request_error", "lock_timeout", None, RateLimitError),
    (500, "api_error", None, None, APIError),
    (502, "api_error", None, None, APIError),
    (503, "api_error", None, None, APIError),
]


class TestErrorMapping:
    @pytest.mark.parametrize(("status", "kind", "code", "param", "cls"), ERROR_CASES)
    def test_status_maps_to_class_with_wire_facts(
        self, status: int, kind: str, code: str | None, param: str | None, cls: type
    ) -> None:
        """Each status (and error type/code) maps to one class carrying code, param, request id."""
        body = error_json(kind, code, param)
        answer = httpx.Response(status, json=body, headers={"Request-Id": "req_e"})
        client = make_client(Recorder(answer))

        with pytest.raises(StripeError) as caught:
            client.update("vs_123", [], idempotency_key="k1")

        error = caught.value
        assert (cls, status, code, param, "req_e", body) == (
            type(error),
            error.http_status,
            error.code,
            error.param,
            error.request_id,
            error.json_body,
        )

    @pytest.mark.parametrize(
        ("header", "expected"), [("true", True), ("false", False), (None, None)]
    )
    def test_should_retry_header_is_parsed(self, header: str | None, expected: bool | None) -> None:
        """Stripe-Should-Retry becomes True/False, and None when absent."""
        headers = {"Stripe-Should-Retry": header} if header else {}
        answer = httpx.Response(500, json=error_json("api_error"), headers=headers)
        client = make_client(Recorder(answer))

        with pytest.raises(APIError) as caught:
            client.update("vs_123", [], idempotency_key="k1")

        assert expected == caught.value.should_retry

    def test_replayed_error_is_flagged(self) -> None:
        """Idempotent-Replayed: true on an error sets idempotent_replayed."""
        answer = httpx.Response(
            500, json=error_json("api_error"), headers={"Idempotent-Replayed": "true"}
        )
        client = make_client(Recorder(answer))

        with pytest.raises(APIError) as caught:
            client.update("vs_123", [], idempotency_key="k1")

        assert caught.value.idempotent_replayed is True

    def test_retry_after_seconds_are_read(self) -> None:
        """Retry-After in seconds becomes retry_after."""
        answer = httpx.Response(
            429,
            json=error_json("invalid_request_error", "rate_limit"),
            headers={"Retry-After": "3"},
        )
        client = make_client(Recorder(answer))

        with pytest.raises(RateLimitError) as caught:
            client.retrieve("vs_123")

        assert 3.0 == caught.value.retry_after

    def test_message_names_the_request(self) -> None:
        """str(error) is "Request <id>: <Stripe's message>"."""
        answer = httpx.Response(
            404, json=error_json("invalid_request_error"), headers={"Request-Id": "req_9"}
        )
        client = make_client(Recorder(answer))

        with pytest.raises(InvalidRequestError) as caught:
            client.retrieve("vs_123")

        assert "Request req_9: invalid_request_error happened" == str(caught.value)

    def test_non_json_error_body_is_an_api_error(self) -> None:
        """A 502 HTML page from a proxy is an APIError with the status and no json_body."""
        client = make_client(Recorder(httpx.Response(502, text="<html>Bad gateway</html>")))

        with pytest.raises(APIError) as caught:
            client.retrieve("vs_123")

        assert (APIError, 502, None) == (
            type(caught.value),
            caught.value.http_status,
            caught.value.json_body,
        )

    def test_body_without_error_is_an_api_error(self) -> None:
        """A JSON 400 without an ``error`` object is an APIError, not an InvalidRequestError."""
        client = make_client(Recorder(httpx.Response(400, json={"oops": True})))

        with pytest.raises(StripeError) as caught:
            client.retrieve("vs_123")

        assert (APIError, 400) == (type(caught.value), caught.value.http_status)


TRANSPORT_CASES = [
    (httpx.ConnectError, "POST", False),
    (httpx.ConnectTimeout, "POST", False),
    (httpx.PoolTimeout, "POST", False),
    (httpx.ReadTimeout, "POST", True),
    (httpx.WriteTimeout, "POST", True),
    (httpx.RemoteProtocolError, "POST", True),
    (httpx.ReadError, "POST", True),
    (httpx.WriteError, "POST", True),
    (httpx.LocalProtocolError, "POST", False),
    (httpx.ProxyError, "POST", False),
    (httpx.ConnectError, "GET", False),
    (httpx.ReadTimeout, "GET", False),
    (httpx.RemoteProtocolError, "GET", False),
    (httpx.ReadError, "GET", False),
]


def raising(exc_cls: type[Exception]) -> Handler:
    """A handler that fails with ``exc_cls`` as a real transport would."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_cls(f"{exc_cls.__name__} on the wire", request=request)  # type: ignore[call-arg]

    return handler


def call(client: StripeClient, method: str) -> None:
    """One POST (update) or GET (retrieve)."""
    if method == "POST":
        client.update("vs_123", [("metadata[a]", "1")], idempotency_key="k1")
    else:
        client.retrieve("vs_123")


class TestTransportErrors:
    @pytest.mark.parametrize(("exc_cls", "method", "may_have_applied"), TRANSPORT_CASES)
    def test_httpx_failure_becomes_api_connection_error(
        self, exc_cls: type[Exception], method: str, may_have_applied: bool
    ) -> None:
        """Every httpx failure is an APIConnectionError saying whether it may have applied."""
        client = make_client(raising(exc_cls))

        with pytest.raises(APIConnectionError) as caught:
            call(client, method)

        assert (may_have_applied, exc_cls) == (
            caught.value.may_have_applied,
            type(caught.value.__cause__),
        )

    def test_read_timeout_message_is_plain(self) -> None:
        """A read timeout says what happened in plain words, with the configured timeout."""
        client = make_client(raising(httpx.ReadTimeout))

        with pytest.raises(APIConnectionError) as caught:
            client.retrieve("vs_123")

        assert "Timed out waiting for Stripe (read timeout after 20.0s)" == str(caught.value)

    def test_ambiguous_post_says_so(self) -> None:
        """A POST that may have reached Stripe says the request may have been applied."""
        client = make_client(raising(httpx.ReadTimeout))

        with pytest.raises(APIConnectionError) as caught:
            call(client, "POST")

        assert str(caught.value).endswith("; the request may have been applied")

    def test_injected_http_client_errors_are_wrapped_too(self) -> None:
        """Errors from a caller's httpx client are wrapped the same way."""
        http = httpx.Client(transport=httpx.MockTransport(raising(httpx.ConnectError)))
        client = StripeClient(KEY, http_client=http)

        with pytest.raises(APIConnectionError):
            client.retrieve("vs_123")


def provocations() -> list[tuple[str, Handler]]:
    """A handler per error class the client can raise after sending."""
    cases: list[tuple[str, Handler]] = [
        (f"{status}-{code}", Recorder(httpx.Response(status, json=error_json(kind, code, param))))
        for status, kind, code, param, _cls in ERROR_CASES
    ]
    cases += [(exc.__name__, raising(exc)) for exc, _m, _a in TRANSPORT_CASES]
    cases.append(("not-json", Recorder(httpx.Response(502, text="no"))))
    cases.append(("bad-200", Recorder(ok({"id": 1}))))
    cases.append(("echoed-id", Recorder(ok(session_json(f"vs_{KEY}")))))
    cases.append(("echoed-object", Recorder(ok(session_json(object=KEY)))))
    return cases


class TestSecrets:
    @pytest.mark.parametrize(("name", "handler"), provocations())
    def test_key_absent_from_every_error(self, name: str, handler: Handler) -> None:
        """Neither the error nor its chained cause mentions the API key."""
        client = make_client(handler)

        with pytest.raises(StripeError) as caught:
            call(client, "POST")

        error = caught.value
        texts = [str(error), repr(error), repr(error.args), str(error.__cause__)]
        assert [] == [text for text in texts if "SECRETSECRET" in text]

    def test_key_absent_from_refusals_before_sending(self) -> None:
        """Refusals raised before any request do not mention the key."""
        client = make_client(Recorder())
        errors = []
        for bad in (lambda: client.retrieve("vs/../x"), lambda: list(client.list(limit=0))):
            with pytest.raises(StripeError) as caught:
                bad()
            errors.append(caught.value)

        assert [] == [e for e in errors if "SECRETSECRET" in f"{e}{e!r}"]

    def test_key_echoed_by_a_server_is_scrubbed(self) -> None:
        """Should a server quote the key in its message, the error does not carry it."""
        body = {"error": {"type": "invalid_request_error", "message": f"Invalid API Key: {KEY}"}}
        client = make_client(Recorder(httpx.Response(401, json=body)))

        with pytest.raises(AuthenticationError) as caught:
            client.retrieve("vs_123")

        error = caught.value
        assert [] == [t for t in (str(error), repr(error), json.dumps(error.json_body)) if KEY in t]

    def test_key_absent_from_repr(self) -> None:
        """repr(client) names the base URL and mode, never the key."""
        client = make_client(Recorder())

        assert "StripeClient(base_url='https://api.stripe.com', mode='test')" == repr(client)

    def test_key_absent_from_log_lines(self, caplog: pytest.LogCaptureFixture) -> None:
        """Debug log lines (one per request) never carry the key or headers."""
        caplog.set_level(logging.DEBUG, logger="vsbatch.stripe.client")
        client = make_client(Recorder(ok(session_json())))
        client.retrieve("vs_123")
        with pytest.raises(APIConnectionError):
            make_client(raising(httpx.ReadTimeout)).retrieve("vs_123")

        assert (2, []) == (
            len(caplog.records),
            [r.getMessage() for r in caplog.records if "SECRET" in r.getMessage()],
        )

    def test_bad_key_is_refused_without_quoting_it(self) -> None:
        """A key with a newline is a ConfigError that does not quote it."""
        with pytest.raises(ConfigError) as caught:
            StripeClient("sk_test_SECRET\nSECRET")

        assert "SECRET" not in str(caught.value)

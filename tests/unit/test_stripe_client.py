"""Unit tests of the Stripe client over ``httpx.MockTransport`` (no sockets)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from vsbatch import config
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
from vsbatch.stripe.client import SESSION_OBJECT, StripeClient
from vsbatch.stripe.retry import decide
from vsbatch.stripe.session import ResponseMeta, VerificationSession

KEY = "sk_test_SECRETSECRET"
Handler = Callable[[httpx.Request], httpx.Response]


def session_json(session_id: str = "vs_123", **overrides: Any) -> dict[str, Any]:
    """A VerificationSession as Stripe's fixtures show it."""
    body: dict[str, Any] = {
        "id": session_id,
        "object": "identity.verification_session",
        "client_reference_id": None,
        "client_secret": None,
        "created": 1234567890,
        "last_error": {"code": None, "reason": None},
        "last_verification_report": None,
        "livemode": False,
        "metadata": {},
        "options": {"document": {"require_matching_selfie": True}},
        "provided_details": None,
        "redaction": None,
        "status": "requires_input",
        "type": "document",
        "url": None,
        "related_customer": None,
        "related_customer_account": None,
    }
    body.update(overrides)
    return body


def error_json(kind: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """A Stripe error body."""
    return {"error": {"type": kind, "code": code, "param": param, "message": f"{kind} happened"}}


def make_client(handler: Handler, **kwargs: Any) -> StripeClient:
    """A client whose requests go to ``handler``."""
    return StripeClient(KEY, transport=httpx.MockTransport(handler), **kwargs)


class Recorder:
    """A MockTransport handler that records requests and answers from a script."""

    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responses.pop(0)


def ok(body: dict[str, Any], **headers: str) -> httpx.Response:
    """A 200 answer with a request id."""
    return httpx.Response(200, json=body, headers={"Request-Id": "req_ok", **headers})


class TestRequestShape:
    def test_update_posts_to_the_session_path(self) -> None:
        """An update is one POST to /v1/identity/verification_sessions/{id}."""
        recorder = Recorder(ok(session_json()))
        client = make_client(recorder)

        client.update("vs_123", [("metadata[a]", "1")], idempotency_key="k1")

        request = recorder.requests[0]
        assert ("POST", "/v1/identity/verification_sessions/vs_123") == (
            request.method,
            request.url.path,
        )

    def test_update_sends_auth_version_key_and_agent_headers(self) -> None:
        """Authorization, Stripe-Version, Idempotency-Key, User-Agent and form type are sent."""
        recorder = Recorder(ok(session_json()))
        client = make_client(recorder)

        client.update("vs_123", [("metadata[a]", "1")], idempotency_key="k1")

        headers = recorder.requests[0].headers
        assert {
            "authorization": f"Bearer {KEY}",
            "stripe-version": config.STRIPE_VERSION,
            "idempotency-key": "k1",
            "content-type": "application/x-www-form-urlencoded",
            "agent": True,
            "stripe-account": None,
        } == {
            "authorization": headers["authorization"],
            "stripe-version": headers["stripe-version"],
            "idempotency-key": headers["idempotency-key"],
            "content-type": headers["content-type"],
            "agent": headers["user-agent"].startswith("vsbatch/"),
            "stripe-account": headers.get("stripe-account"),
        }

    def test_a_cookie_from_an_answer_is_never_sent_back(self) -> None:
        """The client keeps no cookie jar: a Set-Cookie from Stripe, a proxy or a hostile
        server is not sent with the next request (an API client has no session to keep)."""
        planted = ok(session_json(), **{"Set-Cookie": "track=1; Path=/"})
        recorder = Recorder(planted, ok(session_json()))
        client = make_client(recorder)

        client.update("vs_123", [("metadata[a]", "1")], idempotency_key="k1")
        client.update("vs_123", [("metadata[a]", "2")], idempotency_key="k2")

        assert [None, None] == [r.headers.get("cookie") for r in recorder.requests]

    def test_update_sends_the_host_and_body_length(self) -> None:
        """The request names its host and its body's length, as any HTTP/1.1 client does."""
        recorder = Recorder(ok(session_json()))
        client = make_client(recorder, base_url="https://api.stripe.com")

        client.update("vs_123", [("metadata[a]", "1")], idempotency_key="k1")

        request = recorder.requests[0]
        assert ("api.stripe.com", str(len(request.content))) == (
            request.headers.get("host"),
            request.headers.get("content-length"),
        )

    def test_update_body_keeps_literal_brackets(self) -> None:
        """The form body is url-encoded with literal brackets, like stripe-python's."""
        recorder = Recorder(ok(session_json()))
        client = make_client(recorder)
        params = [
            ("metadata[crm id]", "a&b"),
            ("options[document][allowed_types][0]", "passport"),
            ("metadata[old]", ""),
        ]

        client.update("vs_123", params, idempotency_key="k1")

        body = recorder.requests[0].content
        assert (
            b"metadata[crm+id]=a%26b&options[document][allowed_types][0]=passport&metadata[old]="
            == body
        )
        assert params == parse_qsl(body.decode(), keep_blank_values=True)

    def test_stripe_account_header_is_sent_when_given(self) -> None:
        """A connected account is named in the Stripe-Account header."""
        recorder = Recorder(ok(session_json()))
        client = make_client(recorder)

        client.retrieve("vs_123", stripe_account="acct_1ABC")

        assert "acct_1ABC" == recorder.requests[0].headers["stripe-account"]

    def test_retrieve_is_a_bare_get(self) -> None:
        """A retrieve is a GET with neither body nor Idempotency-Key."""
        recorder = Recorder(ok(session_json()))
        client = make_client(recorder)

        client.retrieve("vs_123")

        request = recorder.requests[0]
        assert ("GET", b"", None) == (
            request.method,
            request.content,
            request.headers.get("idempotency-key"),
        )

    def test_base_url_is_injectable(self) -> None:
        """Requests go to the configured base URL (the emulator's, say), trailing slash or not."""
        recorder = Recorder(ok(session_json()))
        client = make_client(recorder, base_url="http://127.0.0.1:9999/")

        client.retrieve("vs_123", expand=())

        assert "http://127.0.0.1:9999/v1/identity/verification_sessions/vs_123" == str(
            recorder.requests[0].url
        )

    def test_retrieve_expands_provided_details(self) -> None:
        """Retrieve asks for provided_details, which Stripe returns only when expanded."""
        recorder = Recorder(ok(session_json()))
        client = make_client(recorder)

        client.retrieve("vs_123")

        assert [("expand[]", "provided_details")] == list(recorder.requests[0].url.params.items())


class TestParsing:
    def test_answer_becomes_a_verification_session(self) -> None:
        """The JSON answer is parsed into a VerificationSession model."""
        client = make_client(Recorder(ok(session_json(metadata={"crm": "42"}))))

        session = client.retrieve("vs_123")

        assert ("vs_123", "requires_input", {"crm": "42"}, True) == (
            session.id,
            session.status,
            session.metadata,
            (session.options or {})["document"]["require_matching_selfie"],
        )

    def test_unknown_fields_are_kept(self) -> None:
        """Fields this version of vsbatch does not know survive parsing."""
        client = make_client(Recorder(ok(session_json(brand_new_field={"x": 1}))))

        session = client.retrieve("vs_123")

        assert {"brand_new_field": {"x": 1}} == session.model_extra

    def test_last_response_carries_the_wire_facts(self) -> None:
        """last_response holds the status, request id, idempotency key and replay flag."""
        answer = ok(session_json(), **{"Idempotent-Replayed": "true", "Idempotency-Key": "k1"})
        client = make_client(Recorder(answer))

        session = client.update("vs_123", [], idempotency_key="k1")

        assert ResponseMeta(200, "req_ok", "k1", True) == session.last_response

    def test_last_response_is_not_a_field(self) -> None:
        """last_response stays out of the model's dump."""
        client = make_client(Recorder(ok(session_json())))

        session = client.retrieve("vs_123")

        assert "last_response" not in session.model_dump()

    def test_model_accepts_the_stripe_fixture(self) -> None:
        """The spec fixture (a verified, redacting session) validates."""
        fixture = session_json(
            status="verified",
            redaction={"status": "processing"},
            last_verification_report="vr_1",
        )

        session = VerificationSession.model_validate(fixture)

        assert {"status": "processing"} == session.redaction

    def test_non_json_success_is_an_api_error(self) -> None:
        """A 200 that is not JSON becomes an APIError carrying the status."""
        client = make_client(Recorder(httpx.Response(200, text="<html>proxy</html>")))

        with pytest.raises(APIError) as caught:
            client.retrieve("vs_123")

        assert 200 == caught.value.http_status

    def test_success_missing_required_fields_is_an_api_error(self) -> None:
        """A 200 JSON object that is not a session becomes an APIError naming the field."""
        client = make_client(Recorder(ok({"id": "vs_123", "object": SESSION_OBJECT})))

        with pytest.raises(APIError, match="status"):
            client.retrieve("vs_123")


class TestAnswerIsOurSession:
    """A 2xx counts only if it carries the very session asked for; anything else is ambiguous."""

    @pytest.mark.parametrize(
        "body",
        [
            session_json(object="identity.verification_report"),
            session_json(object="customer"),
            {k: v for k, v in session_json().items() if k != "object"},
            session_json("vs_other"),
        ],
        ids=["verification-report", "customer", "no-object", "other-id"],
    )
    def test_update_answer_that_is_not_our_session_is_an_api_error(
        self, body: dict[str, Any]
    ) -> None:
        """A 200 with another object type, no object or another id raises an APIError (200)."""
        client = make_client(Recorder(ok(body)))

        with pytest.raises(APIError) as caught:
            client.update("vs_123", [("metadata[a]", "1")], idempotency_key="k1")

        assert 200 == caught.value.http_status

    def test_retrieve_answer_with_another_id_is_an_api_error(self) -> None:
        """A read-back that returns another session cannot confirm anything."""
        client = make_client(Recorder(ok(session_json("vs_other"))))

        with pytest.raises(APIError, match="vs_other"):
            client.retrieve("vs_123")

    def test_list_item_of_another_type_is_an_api_error(self) -> None:
        """A list page holding something other than sessions is refused."""
        page = {"object": "list", "data": [session_json(object="customer")], "has_more": False}
        client = make_client(Recorder(ok(page)))

        with pytest.raises(APIError, match="customer"):
            list(client.list())

    @pytest.mark.parametrize(
        "answer",
        [
            ok(session_json("vs_other")),
            ok(session_json(object="identity.verification_report")),
            httpx.Response(200, text="<html>blocked</html>"),
        ],
        ids=["other-id", "other-object", "html"],
    )
    def test_not_our_session_is_ambiguous_and_retried_under_the_same_key(
        self, answer: httpx.Response
    ) -> None:
        """The retry policy reads such an answer as "maybe applied": same key, then read back."""
        client = make_client(Recorder(answer))

        with pytest.raises(APIError) as caught:
            client.update("vs_123", [], idempotency_key="k1")

        decision = decide(caught.value)
        assert (True, True, False) == (decision.retry, decision.ambiguous, decision.stored)


class TestList:
    def pages(self) -> Recorder:
        """Three pages of two, two and one sessions."""
        return Recorder(
            ok(
                {
                    "object": "list",
                    "data": [session_json("vs_1"), session_json("vs_2")],
                    "has_more": True,
                }
            ),
            ok(
                {
                    "object": "list",
                    "data": [session_json("vs_3"), session_json("vs_4")],
                    "has_more": True,
                }
            ),
            ok({"object": "list", "data": [session_json("vs_5")], "has_more": False}),
        )

    def test_list_follows_pages_until_has_more_is_false(self) -> None:
        """Every session of every page is yielded, in order."""
        client = make_client(self.pages())

        ids = [session.id for session in client.list(limit=2)]

        assert ["vs_1", "vs_2", "vs_3", "vs_4", "vs_5"] == ids

    def test_list_sends_filters_and_starting_after(self) -> None:
        """Each page repeats the filters and starts after the previous page's last id."""
        recorder = self.pages()
        client = make_client(recorder)

        list(client.list(status="requires_input", created={"gte": 100, "lt": 200}, limit=2))

        base = "limit=2&status=requires_input&created[gte]=100&created[lt]=200"
        assert [
            base,
            base + "&starting_after=vs_2",
            base + "&starting_after=vs_4",
        ] == [request.url.query.decode() for request in recorder.requests]

    def test_list_with_an_exact_created_timestamp(self) -> None:
        """An int ``created`` is sent as created=<t>."""
        recorder = Recorder(ok({"object": "list", "data": [], "has_more": False}))
        client = make_client(recorder)

        list(client.list(created=123))

        assert "limit=100&created=123" == recorder.requests[0].url.query.decode()

    def test_list_refuses_a_limit_out_of_range(self) -> None:
        """A limit above 100 is refused before any request."""
        recorder = Recorder()
        client = make_client(recorder)

        with pytest.raises(InvalidRequestError):
            list(client.list(limit=101))

        assert [] == recorder.requests

    def test_list_without_data_is_an_api_error(self) -> None:
        """A list answer without ``data`` is an APIError, not an endless loop."""
        client = make_client(Recorder(ok({"object": "list", "has_more": True})))

        with pytest.raises(APIError):
            list(client.list())


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


class TestSessionIdValidation:
    @pytest.mark.parametrize(
        "session_id", ["", "vs_1/cancel", "vs_1?x=1", "vs_1#x", "vs 1", "vs_1\n", "..", "vs_%2F"]
    )
    def test_bad_session_id_is_refused_without_a_request(self, session_id: str) -> None:
        """An id that could change the path is an InvalidRequestError and nothing is sent."""
        recorder = Recorder()
        client = make_client(recorder)

        with pytest.raises(InvalidRequestError) as caught:
            client.update(session_id, [], idempotency_key="k1")

        assert ("id", []) == (caught.value.param, recorder.requests)

    @pytest.mark.parametrize(
        ("kwargs", "param"),
        [
            ({"idempotency_key": ""}, "idempotency_key"),
            ({"idempotency_key": "k" * 256}, "idempotency_key"),
            ({"idempotency_key": "k1", "stripe_account": "acct_1\r\nX-Evil: 1"}, "stripe_account"),
        ],
    )
    def test_bad_header_values_are_refused_without_a_request(
        self, kwargs: dict[str, Any], param: str
    ) -> None:
        """An empty, overlong or multi-line header value is refused before sending."""
        recorder = Recorder()
        client = make_client(recorder)

        with pytest.raises(InvalidRequestError) as caught:
            client.update("vs_123", [], **kwargs)

        assert (param, []) == (caught.value.param, recorder.requests)


class TestLifecycle:
    def test_context_manager_closes_the_owned_pool(self) -> None:
        """Leaving the with-block closes the client's own httpx client."""
        with make_client(Recorder()) as client:
            pass

        assert client._http.is_closed

    def test_injected_http_client_is_left_open(self) -> None:
        """A caller's httpx client is the caller's to close."""
        http = httpx.Client(transport=httpx.MockTransport(Recorder()))
        StripeClient(KEY, http_client=http).close()

        assert not http.is_closed
        http.close()

    def test_http_client_and_transport_together_are_refused(self) -> None:
        """Giving both an httpx client and a transport is a ConfigError."""
        transport = httpx.MockTransport(Recorder())

        with pytest.raises(ConfigError), httpx.Client() as http:
            StripeClient(KEY, http_client=http, transport=transport)


class TestOneFactory:
    def test_from_settings_keeps_both_timeouts_and_the_deadline(self) -> None:
        """The client built from settings has their connect and read timeouts (``plan`` once
        built its own client and dropped the connect timeout)."""
        settings = config.Settings(
            _env_file=None,  # type: ignore[call-arg]
            stripe_api_key="sk_test_" + "a" * 24,
            http_connect_timeout=1.5,
            http_timeout=7.0,
        )

        with StripeClient.from_settings(settings) as client:
            facts = (client.timeouts.connect, client.timeouts.read, client.deadline)

        assert (1.5, 7.0, 8.5) == facts

    def test_the_package_builds_its_client_only_from_settings(self) -> None:
        """No module but the client's own calls ``StripeClient(...)``: every caller goes through
        ``StripeClient.from_settings``, so no caller can drop a setting."""
        import pathlib
        import re

        import vsbatch

        root = pathlib.Path(vsbatch.__file__).parent
        callers = [
            str(path.relative_to(root))
            for path in root.rglob("*.py")
            if path.name != "client.py" and re.search(r"\bStripeClient\(", path.read_text())
        ]

        assert [] == callers

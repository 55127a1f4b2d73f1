"""Unit tests of the Stripe client over ``httpx.MockTransport`` (no sockets): the requests it
sends and how it reads the answers (sessions, foreign answers, lists).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from tests.unit.stripe_mock import KEY, Recorder, make_client, ok, session_json
from vsbatch import config
from vsbatch.errors import APIError, InvalidRequestError
from vsbatch.stripe.client import SESSION_OBJECT
from vsbatch.stripe.retry import decide
from vsbatch.stripe.session import ResponseMeta, VerificationSession


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

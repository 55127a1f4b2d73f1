"""The emulator's Stripe routes over a real socket: updates, idempotency, auth, scoping, lists."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_API_KEY

BASE = "/v1/identity/verification_sessions"


@pytest.fixture
def api(emulator: Any) -> Iterator[httpx.Client]:
    """An httpx client authenticated with a test key, rate limit off."""
    emulator.configure(rate_limit=0)
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    with httpx.Client(base_url=emulator.url, headers=headers, timeout=5) as client:
        yield client


def _update(api: httpx.Client, sid: str, data: dict[str, str], **headers: str) -> httpx.Response:
    return api.post(f"{BASE}/{sid}", data=data, headers=headers)


class TestUpdate:
    """Update applies Stripe's semantics and refuses what Stripe refuses."""

    def test_update_merges_metadata_and_document_options(
        self, emulator: Any, api: httpx.Client
    ) -> None:
        """Metadata keys merge, empty values unset, document options merge into existing ones."""
        [sid] = emulator.seed(
            metadata={"keep": "1", "drop": "2"},
            options={"document": {"require_matching_selfie": True}},
        )

        body = _update(
            api,
            sid,
            {
                "metadata[new]": "3",
                "metadata[drop]": "",
                "options[document][allowed_types][0]": "passport",
                "options[document][require_id_number]": "true",
            },
        ).json()

        expected = (
            {"keep": "1", "new": "3"},
            {
                "document": {
                    "require_matching_selfie": True,
                    "allowed_types": ["passport"],
                    "require_id_number": True,
                }
            },
        )
        assert expected == (body["metadata"], body["options"])

    def test_update_returns_the_whole_session_object(
        self, emulator: Any, api: httpx.Client
    ) -> None:
        """The answer is an identity.verification_session with Stripe's fields."""
        [sid] = emulator.seed()

        body = _update(api, sid, {"type": "id_number"}).json()

        expected = {
            "id": sid,
            "object": "identity.verification_session",
            "livemode": False,
            "status": "requires_input",
            "type": "id_number",
            "redaction": None,
            "last_error": None,
        }
        assert expected == {key: body[key] for key in expected}

    def test_empty_document_options_unset_them(self, emulator: Any, api: httpx.Client) -> None:
        """``options[document]=`` leaves ``options`` empty."""
        [sid] = emulator.seed(options={"document": {"require_id_number": True}})

        body = _update(api, sid, {"options[document]": ""}).json()

        assert {} == body["options"]

    def test_provided_details_are_set(self, emulator: Any, api: httpx.Client) -> None:
        """Email and phone land in ``provided_details`` (shown when expanded)."""
        [sid] = emulator.seed()

        body = _update(
            api,
            sid,
            {
                "provided_details[email]": "a@b.co",
                "provided_details[phone]": "+15555550100",
                "expand[]": "provided_details",
            },
        ).json()

        assert {"email": "a@b.co", "phone": "+15555550100"} == body["provided_details"]

    @pytest.mark.parametrize(
        ("data", "code", "param"),
        [
            ({"foo": "1"}, "parameter_unknown", "foo"),
            ({"client_reference_id": "x"}, "parameter_unknown", "client_reference_id"),
            ({"type": "selfie"}, "parameter_invalid_string", "type"),
            (
                {"options[document][require_live_capture]": "maybe"},
                "parameter_invalid_boolean",
                "options[document][require_live_capture]",
            ),
            ({"metadata[" + "k" * 41 + "]": "v"}, "parameter_invalid_string", "metadata"),
            ({"metadata[k]": "v" * 501}, "parameter_invalid_string", "metadata[k]"),
            (
                {"provided_details[email]": "e" * 801},
                "parameter_invalid_string",
                "provided_details[email]",
            ),
        ],
    )
    def test_invalid_parameters_are_400_with_param(
        self, emulator: Any, api: httpx.Client, data: dict[str, str], code: str, param: str
    ) -> None:
        """A refused parameter answers 400 invalid_request_error naming code and param."""
        [sid] = emulator.seed()

        response = _update(api, sid, data)

        error = response.json()["error"]
        assert (400, "invalid_request_error", code, param) == (
            response.status_code,
            error["type"],
            error.get("code"),
            error.get("param"),
        )

    def test_more_than_50_metadata_keys_is_refused(self, emulator: Any, api: httpx.Client) -> None:
        """The 51st key is refused with Stripe's message."""
        [sid] = emulator.seed(metadata={f"k{i}": "v" for i in range(50)})

        error = _update(api, sid, {"metadata[one_more]": "v"}).json()["error"]

        assert error["message"].startswith("Metadata can have up to 50 keys, but you've set 51.")

    def test_unknown_session_is_404_resource_missing(self, api: httpx.Client) -> None:
        """An unknown id answers Stripe's 404 with param id."""
        response = _update(api, "vs_missing", {"metadata[a]": "1"})

        error = response.json()["error"]
        expected = (404, "resource_missing", "id", "No such verificationsession: 'vs_missing'")
        assert expected == (response.status_code, error["code"], error["param"], error["message"])

    @pytest.mark.parametrize("status", ["processing", "verified", "canceled"])
    def test_update_outside_requires_input_is_refused(
        self, emulator: Any, api: httpx.Client, status: str
    ) -> None:
        """Sessions past requires_input answer 400 session_invalid_status."""
        [sid] = emulator.seed(status=status)

        response = _update(api, sid, {"metadata[a]": "1"})

        assert (400, "session_invalid_status") == (
            response.status_code,
            response.json()["error"]["code"],
        )

    def test_allow_update_any_status_accepts_a_verified_session(
        self, emulator: Any, api: httpx.Client
    ) -> None:
        """With the switch on, a verified session takes the update."""
        [sid] = emulator.seed(status="verified")
        emulator.configure(allow_update_any_status=True)

        response = _update(api, sid, {"metadata[a]": "1"})

        assert 200 == response.status_code

    def test_a_redacted_session_is_never_updated(self, emulator: Any, api: httpx.Client) -> None:
        """Even with allow_update_any_status, a redacted session refuses updates."""
        [sid] = emulator.seed(status="verified", redacted=True)
        emulator.configure(allow_update_any_status=True)

        response = _update(api, sid, {"metadata[a]": "1"})

        assert 400 == response.status_code


class TestIdempotency:
    """Keys replay, refuse other parameters and refuse overlap, as FACTS.md says."""

    def test_same_key_same_params_replays(self, emulator: Any, api: httpx.Client) -> None:
        """The second request gets the stored body with Idempotent-Replayed and is not applied."""
        [sid] = emulator.seed()
        first = _update(api, sid, {"metadata[a]": "1"}, **{"Idempotency-Key": "key-1"})

        second = _update(api, sid, {"metadata[a]": "1"}, **{"Idempotency-Key": "key-1"})

        actual = (
            second.status_code,
            second.headers["Idempotent-Replayed"],
            second.headers["Idempotency-Key"],
            second.content == first.content,
            emulator.stats()["applied"],
        )
        assert (200, "true", "key-1", True, {sid: 1}) == actual

    def test_same_key_other_params_is_idempotency_error(
        self, emulator: Any, api: httpx.Client
    ) -> None:
        """Reusing a key with other parameters is 400 idempotency_error."""
        [sid] = emulator.seed()
        _update(api, sid, {"metadata[a]": "1"}, **{"Idempotency-Key": "key-2"})

        response = _update(api, sid, {"metadata[a]": "2"}, **{"Idempotency-Key": "key-2"})

        assert (400, "idempotency_error") == (
            response.status_code,
            response.json()["error"]["type"],
        )

    def test_same_key_while_executing_is_409(self, emulator: Any, api: httpx.Client) -> None:
        """A key reused while its first request still runs is 409 idempotency_key_in_use."""
        [sid] = emulator.seed()
        emulator.configure(latency_ms=400)
        first: list[httpx.Response] = []
        thread = threading.Thread(
            target=lambda: first.append(
                _update(api, sid, {"metadata[a]": "1"}, **{"Idempotency-Key": "k3"})
            )
        )
        thread.start()
        while emulator.stats()["updates"] < 1:
            threading.Event().wait(0.01)

        second = _update(api, sid, {"metadata[a]": "1"}, **{"Idempotency-Key": "k3"})
        thread.join()

        actual = (second.status_code, second.json()["error"]["code"], first[0].status_code)
        assert (409, "idempotency_key_in_use", 200) == actual

    def test_validation_400_is_not_stored(self, emulator: Any, api: httpx.Client) -> None:
        """After a refused parameter the same key can carry a corrected request."""
        [sid] = emulator.seed()
        _update(api, sid, {"foo": "1"}, **{"Idempotency-Key": "k4"})

        response = _update(api, sid, {"metadata[a]": "1"}, **{"Idempotency-Key": "k4"})

        assert 200 == response.status_code

    def test_keys_are_scoped_per_account(self, emulator: Any, api: httpx.Client) -> None:
        """The same key on another account is a new request."""
        [mine] = emulator.seed()
        [theirs] = emulator.seed(account="acct_other")
        _update(api, mine, {"metadata[a]": "1"}, **{"Idempotency-Key": "shared"})

        response = _update(
            api,
            theirs,
            {"metadata[a]": "1"},
            **{"Idempotency-Key": "shared", "Stripe-Account": "acct_other"},
        )

        assert (200, None) == (response.status_code, response.headers.get("Idempotent-Replayed"))


class TestAuthAndHeaders:
    """Keys, Request-Id and Stripe-Account."""

    @pytest.mark.parametrize(
        "authorization",
        [None, "Bearer sk_live_abcdefghijkl", "Bearer pk_test_abcdefgh", "Bearer nonsense"],
    )
    def test_missing_or_unusable_key_is_401(self, emulator: Any, authorization: str | None) -> None:
        """No key, a live key or a publishable key is 401 invalid_request_error."""
        [sid] = emulator.seed()
        headers = {"Authorization": authorization} if authorization else {}

        response = httpx.get(f"{emulator.url}{BASE}/{sid}", headers=headers)

        assert (401, "invalid_request_error") == (
            response.status_code,
            response.json()["error"]["type"],
        )

    def test_basic_auth_with_the_key_as_user_is_accepted(self, emulator: Any) -> None:
        """``Basic base64(key:)`` works like Bearer."""
        [sid] = emulator.seed()
        token = base64.b64encode(f"{TEST_API_KEY}:".encode()).decode()

        response = httpx.get(
            f"{emulator.url}{BASE}/{sid}", headers={"Authorization": f"Basic {token}"}
        )

        assert 200 == response.status_code

    @pytest.mark.parametrize(
        ("method", "path", "authorized"),
        [
            ("GET", BASE, True),
            ("GET", BASE, False),
            ("POST", f"{BASE}/vs_x", True),
            ("GET", "/v1/nope", True),
        ],
    )
    def test_every_response_has_a_request_id(
        self, emulator: Any, method: str, path: str, authorized: bool
    ) -> None:
        """Successes, 401s, 404s and unknown URLs all carry ``Request-Id: req_...``."""
        headers = {"Authorization": f"Bearer {TEST_API_KEY}"} if authorized else {}

        response = httpx.request(method, f"{emulator.url}{path}", headers=headers)

        assert response.headers["Request-Id"].startswith("req_")

    def test_sessions_are_scoped_per_account(self, emulator: Any, api: httpx.Client) -> None:
        """A connected account's session is invisible to the platform."""
        [sid] = emulator.seed(account="acct_connected")

        platform = api.get(f"{BASE}/{sid}").status_code
        connected = api.get(
            f"{BASE}/{sid}", headers={"Stripe-Account": "acct_connected"}
        ).status_code

        assert (404, 200) == (platform, connected)


class TestList:
    """Newest first, cursors, filters, limits."""

    def test_lists_newest_first_with_has_more(self, emulator: Any, api: httpx.Client) -> None:
        """A page of 2 out of 3 is the two newest and says more follow."""
        ids = emulator.seed(count=3)

        body = api.get(BASE, params={"limit": 2}).json()

        expected = ("list", [ids[2], ids[1]], True, BASE)
        assert expected == (
            body["object"],
            [s["id"] for s in body["data"]],
            body["has_more"],
            body["url"],
        )

    def test_starting_after_continues(self, emulator: Any, api: httpx.Client) -> None:
        """``starting_after`` the second newest gives the oldest."""
        ids = emulator.seed(count=3)

        body = api.get(BASE, params={"limit": 2, "starting_after": ids[1]}).json()

        assert ([ids[0]], False) == ([s["id"] for s in body["data"]], body["has_more"])

    def test_ending_before_goes_back(self, emulator: Any, api: httpx.Client) -> None:
        """``ending_before`` the oldest gives the newer ones, newest first."""
        ids = emulator.seed(count=3)

        body = api.get(BASE, params={"limit": 10, "ending_before": ids[0]}).json()

        assert [ids[2], ids[1]] == [s["id"] for s in body["data"]]

    def test_status_filter(self, emulator: Any, api: httpx.Client) -> None:
        """``status`` keeps only matching sessions."""
        emulator.seed(count=2)
        verified = emulator.seed(count=2, status="verified")

        body = api.get(BASE, params={"status": "verified"}).json()

        assert verified[::-1] == [s["id"] for s in body["data"]]

    def test_created_range_filter(self, emulator: Any, api: httpx.Client) -> None:
        """``created[gte]``/``created[lt]`` select by creation time."""
        emulator.seed(created=100)
        [middle] = emulator.seed(created=200)
        emulator.seed(created=300)

        body = api.get(BASE, params={"created[gte]": 150, "created[lt]": 300}).json()

        assert [middle] == [s["id"] for s in body["data"]]

    def test_created_exact_filter(self, emulator: Any, api: httpx.Client) -> None:
        """An integer ``created`` selects that second."""
        emulator.seed(created=100)
        [match] = emulator.seed(created=200)

        body = api.get(BASE, params={"created": 200}).json()

        assert [match] == [s["id"] for s in body["data"]]

    @pytest.mark.parametrize("limit", ["0", "101", "ten"])
    def test_limit_outside_1_to_100_is_refused(self, api: httpx.Client, limit: str) -> None:
        """``limit`` must be an integer from 1 to 100."""
        response = api.get(BASE, params={"limit": limit})

        assert (400, "limit") == (response.status_code, response.json()["error"]["param"])

    def test_default_limit_is_10(self, emulator: Any, api: httpx.Client) -> None:
        """Without ``limit`` a page holds 10 sessions."""
        emulator.seed(count=12)

        body = api.get(BASE).json()

        assert (10, True) == (len(body["data"]), body["has_more"])


class TestCreateCancelRedact:
    """Create, and the status rules of cancel and redact."""

    def test_create_makes_a_requires_input_session(self, api: httpx.Client) -> None:
        """A created session has a vs_ id, a client secret and status requires_input."""
        body = api.post(BASE, data={"type": "document", "metadata[a]": "1"}).json()

        actual = (
            body["id"][:3],
            len(body["id"]),
            body["status"],
            body["metadata"],
            body["client_secret"] is not None,
        )
        assert ("vs_", 27, "requires_input", {"a": "1"}, True) == actual

    def test_create_without_type_is_parameter_missing(self, api: httpx.Client) -> None:
        """``type`` (or verification_flow) is required."""
        response = api.post(BASE, data={"metadata[a]": "1"})

        assert (400, "parameter_missing") == (
            response.status_code,
            response.json()["error"]["code"],
        )

    def test_cancel_from_requires_input(self, emulator: Any, api: httpx.Client) -> None:
        """Cancel moves requires_input to canceled."""
        [sid] = emulator.seed()

        body = api.post(f"{BASE}/{sid}/cancel").json()

        assert "canceled" == body["status"]

    @pytest.mark.parametrize("status", ["processing", "verified", "canceled"])
    def test_cancel_refused_outside_requires_input(
        self, emulator: Any, api: httpx.Client, status: str
    ) -> None:
        """Only requires_input sessions can be canceled."""
        [sid] = emulator.seed(status=status)

        assert 400 == api.post(f"{BASE}/{sid}/cancel").status_code

    @pytest.mark.parametrize(
        ("status", "after"), [("requires_input", "canceled"), ("verified", "verified")]
    )
    def test_redact_from_requires_input_or_verified(
        self, emulator: Any, api: httpx.Client, status: str, after: str
    ) -> None:
        """The redact answer: metadata erased, redaction processing, requires_input canceled."""
        [sid] = emulator.seed(status=status, metadata={"a": "1"})

        body = api.post(f"{BASE}/{sid}/redact").json()

        assert ({"status": "processing"}, {}, after) == (
            body["redaction"],
            body["metadata"],
            body["status"],
        )

    @pytest.mark.parametrize("status", ["processing", "canceled"])
    def test_redact_refused_in_other_statuses(
        self, emulator: Any, api: httpx.Client, status: str
    ) -> None:
        """processing and canceled sessions cannot be redacted."""
        [sid] = emulator.seed(status=status)

        assert 400 == api.post(f"{BASE}/{sid}/redact").status_code


class TestAdmin:
    """The ``/_emulator`` routes."""

    def test_seed_route_returns_ids(self, emulator: Any) -> None:
        """``POST /_emulator/sessions`` creates sessions that the API then serves."""
        response = httpx.post(
            f"{emulator.url}/_emulator/sessions", json={"count": 2, "status": "verified"}
        )

        actual = len(response.json()["ids"])
        assert 2 == actual

    def test_seed_route_accepts_explicit_ids(self, emulator: Any, api: httpx.Client) -> None:
        """Explicit ids are used as given."""
        httpx.post(
            f"{emulator.url}/_emulator/sessions", json={"ids": ["vs_fixed0000000000000000001"]}
        )

        assert 200 == api.get(f"{BASE}/vs_fixed0000000000000000001").status_code

    def test_config_route_changes_the_config(self, emulator: Any) -> None:
        """``POST /_emulator/config`` merges fields; ``GET`` shows them."""
        httpx.post(f"{emulator.url}/_emulator/config", json={"rate_limit": 7, "latency_ms": 1})

        body = httpx.get(f"{emulator.url}/_emulator/config").json()

        assert (7, 1.0) == (body["rate_limit"], body["latency_ms"])

    def test_config_route_refuses_unknown_fields(self, emulator: Any) -> None:
        """An unknown field is 400 and changes nothing."""
        response = httpx.post(f"{emulator.url}/_emulator/config", json={"rate_limt": 7})

        assert (400, 25) == (response.status_code, emulator.config.rate_limit)

    def test_reset_route_restores_startup_state(self, emulator: Any) -> None:
        """``POST /_emulator/reset`` empties sessions and stats and restores the config."""
        emulator.seed(count=3)
        emulator.configure(rate_limit=1)

        httpx.post(f"{emulator.url}/_emulator/reset")

        actual = (
            emulator.config.rate_limit,
            emulator.stats()["requests"],
            len(emulator.emulator.world.sessions),
        )
        assert (25, {}, 0) == actual

    def test_stats_count_requests_by_status(self, emulator: Any, api: httpx.Client) -> None:
        """Stats count answers per status code and applied updates per session."""
        [sid] = emulator.seed()
        _update(api, sid, {"metadata[a]": "1"})
        _update(api, sid, {"foo": "1"})
        api.get(f"{BASE}/vs_none")

        body = httpx.get(f"{emulator.url}/_emulator/stats").json()

        assert ({"200": 1, "400": 1, "404": 1}, {sid: 1}) == (body["requests"], body["applied"])


class TestClientGone:
    def test_a_client_that_hangs_up_mid_body_is_not_logged_as_a_failure(
        self, emulator: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A worker killed while sending its body is a disconnect, not an emulator traceback."""
        import logging
        import socket
        import time
        from urllib.parse import urlsplit

        [sid] = emulator.seed()
        where = urlsplit(emulator.url)
        caplog.set_level(logging.INFO, logger="vsbatch.emulator")

        with socket.create_connection((where.hostname, where.port)) as sock:
            sock.sendall(
                f"POST /v1/identity/verification_sessions/{sid} HTTP/1.1\r\n"
                f"Host: x\r\nAuthorization: Bearer {TEST_API_KEY}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                "Content-Length: 1000\r\n\r\nmetadata[a]=".encode()
            )
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not caplog.records:
            time.sleep(0.05)

        assert [] == [r for r in caplog.records if r.exc_info or "failure" in r.getMessage()]
        assert 0 == emulator.stats()["applied"].get(sid, 0)

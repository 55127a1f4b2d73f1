"""The emulator's Stripe routes over a real socket: auth and headers, scoping, lists, create,
cancel and redact, and a client that hangs up mid-body.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_API_KEY
from tests.integration.conftest import BASE


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

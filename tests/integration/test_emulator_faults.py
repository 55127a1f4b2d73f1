"""Load behaviour and seeded faults over a socket: limits, lock timeouts, 500/503, hang, drop."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_API_KEY

BASE = "/v1/identity/verification_sessions"


@pytest.fixture
def api(emulator: Any) -> Iterator[httpx.Client]:
    """An httpx client authenticated with a test key (the fixture's default config)."""
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    with httpx.Client(base_url=emulator.url, headers=headers, timeout=5) as client:
        yield client


def _update(
    api: httpx.Client, sid: str, key: str | None = None, value: str = "1"
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return api.post(f"{BASE}/{sid}", data={"metadata[a]": value}, headers=headers)


def _outcome(response: httpx.Response) -> str:
    return str(response.status_code)


class TestRateLimit:
    """Per-account requests per second."""

    def test_past_the_limit_is_429_rate_limit_without_should_retry(
        self, emulator: Any, api: httpx.Client
    ) -> None:
        """The 4th request within a second at a limit of 3 is 429 rate_limit, no retry advice."""
        emulator.configure(rate_limit=3)
        [sid] = emulator.seed()

        responses = [api.get(f"{BASE}/{sid}") for _ in range(4)]

        last = responses[-1]
        actual = (
            [r.status_code for r in responses],
            last.json()["error"]["code"],
            last.headers.get("Stripe-Should-Retry"),
            emulator.stats()["rate_limited"],
        )
        assert ([200, 200, 200, 429], "rate_limit", None, 1) == actual

    def test_rate_limited_request_stores_no_key(self, emulator: Any, api: httpx.Client) -> None:
        """A 429'd request's key is free: the retry executes (not replayed)."""
        emulator.configure(rate_limit=1)
        [sid] = emulator.seed()
        api.get(f"{BASE}/{sid}")
        _update(api, sid, key="rl-key")
        emulator.configure(rate_limit=0)

        response = _update(api, sid, key="rl-key")

        assert (200, None) == (response.status_code, response.headers.get("Idempotent-Replayed"))

    def test_limits_are_per_account(self, emulator: Any, api: httpx.Client) -> None:
        """Another account still has its allowance."""
        emulator.configure(rate_limit=1)
        [sid] = emulator.seed(account="acct_b")
        api.get(f"{BASE}/vs_x")

        response = api.get(f"{BASE}/{sid}", headers={"Stripe-Account": "acct_b"})

        assert 200 == response.status_code


class TestLockTimeout:
    """Concurrent writes to one session."""

    def test_second_concurrent_write_gets_lock_timeout(
        self, emulator: Any, api: httpx.Client
    ) -> None:
        """While one update holds the session, another is 429 lock_timeout with Should-Retry."""
        emulator.configure(rate_limit=0, latency_ms=400)
        [sid] = emulator.seed()
        first: list[httpx.Response] = []
        thread = threading.Thread(target=lambda: first.append(_update(api, sid, value="first")))
        thread.start()
        while emulator.stats()["updates"] < 1:
            threading.Event().wait(0.01)

        second = _update(api, sid, value="second")
        thread.join()

        actual = (
            first[0].status_code,
            second.status_code,
            second.json()["error"]["code"],
            second.headers["Stripe-Should-Retry"],
            emulator.stats()["lock_timeouts"],
        )
        assert (200, 429, "lock_timeout", "true", 1) == actual

    def test_lock_timeout_rate_without_contention(self, emulator: Any, api: httpx.Client) -> None:
        """``lock_timeout_rate=1`` answers lock_timeout to a lone update, applying nothing."""
        emulator.configure(lock_timeout_rate=1.0)
        [sid] = emulator.seed()

        response = _update(api, sid)

        assert (429, "lock_timeout", {}) == (
            response.status_code,
            response.json()["error"]["code"],
            emulator.stats()["applied"],
        )


class TestServerErrors:
    """Injected 503s refuse before execution; injected 500s come after applying."""

    def test_503_is_refused_unstored_and_retryable(self, emulator: Any, api: httpx.Client) -> None:
        """A 503 applies nothing and its key is free, so the retry executes."""
        emulator.configure(fail_503_rate=1.0)
        [sid] = emulator.seed()
        refused = _update(api, sid, key="k503")
        emulator.configure(fail_503_rate=0.0)

        retried = _update(api, sid, key="k503")

        actual = (
            refused.status_code,
            refused.headers["Stripe-Should-Retry"],
            retried.status_code,
            retried.headers.get("Idempotent-Replayed"),
            emulator.stats()["applied"],
        )
        assert (503, "true", 200, None, {sid: 1}) == actual

    def test_500_after_apply_is_stored_and_replayed(self, emulator: Any, api: httpx.Client) -> None:
        """The update applies, the client sees 500 (no retry advised), the retry replays the 500."""
        emulator.configure(fail_500_after_rate=1.0)
        [sid] = emulator.seed()
        first = _update(api, sid, key="k500")
        emulator.configure(fail_500_after_rate=0.0)

        replay = _update(api, sid, key="k500")

        session = api.get(f"{BASE}/{sid}").json()
        actual = (
            first.status_code,
            first.json()["error"]["type"],
            first.headers["Stripe-Should-Retry"],
            replay.status_code,
            replay.headers["Stripe-Should-Retry"],
            replay.headers["Idempotent-Replayed"],
            session["metadata"],
            emulator.stats()["applied"],
        )
        assert (500, "api_error", "false", 500, "false", "true", {"a": "1"}, {sid: 1}) == actual


class TestHangAndDrop:
    """Responses that never (or too late) arrive."""

    def test_hung_update_times_out_the_client_but_applies(
        self, emulator: Any, api: httpx.Client
    ) -> None:
        """With hang_applies the client times out, yet the session changed and a retry replays."""
        emulator.configure(hang_rate=1.0, hang_seconds=1.0, hang_applies=True)
        [sid] = emulator.seed()

        with pytest.raises(httpx.ReadTimeout):
            api.post(
                f"{BASE}/{sid}",
                data={"metadata[a]": "1"},
                headers={"Idempotency-Key": "kh"},
                timeout=0.3,
            )
        emulator.configure(hang_rate=0.0)
        retry = _update(api, sid, key="kh")

        assert (200, "true", {sid: 1}) == (
            retry.status_code,
            retry.headers.get("Idempotent-Replayed"),
            emulator.stats()["applied"],
        )

    def test_hung_update_not_applied_changes_nothing(
        self, emulator: Any, api: httpx.Client
    ) -> None:
        """With hang_applies false the client times out and the session is untouched."""
        emulator.configure(hang_rate=1.0, hang_seconds=1.0, hang_applies=False)
        [sid] = emulator.seed()

        with pytest.raises(httpx.ReadTimeout):
            api.post(f"{BASE}/{sid}", data={"metadata[a]": "1"}, timeout=0.3)

        assert {} == emulator.stats()["applied"]

    @pytest.mark.parametrize(("applies", "expected"), [(True, 1), (False, 0)])
    def test_drop_gives_the_client_a_protocol_error(
        self, emulator: Any, api: httpx.Client, applies: bool, expected: int
    ) -> None:
        """A dropped response raises RemoteProtocolError; the update applied per drop_applies."""
        emulator.configure(drop_rate=1.0, drop_applies=applies)
        [sid] = emulator.seed()

        with pytest.raises(httpx.RemoteProtocolError):
            _update(api, sid)

        assert (expected, 1) == (
            emulator.stats()["applied"].get(sid, 0),
            emulator.stats()["dropped"],
        )


def wait_behind_gateway(emulator: Any, timeout: float = 10.0) -> dict[str, Any]:
    """The emulator's stats once no request is left to run behind a gateway's answer."""
    deadline = time.monotonic() + timeout
    while (stats := emulator.stats())["gateway_pending"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert 0 == stats["gateway_pending"]
    return stats


class TestGateway:
    """A proxy in front of Stripe answers instead of Stripe; Stripe may apply behind it."""

    @pytest.mark.parametrize("status", [502, 504])
    def test_gateway_error_is_html_without_stripe_headers(
        self, emulator: Any, api: httpx.Client, status: int
    ) -> None:
        """The client gets the gateway's HTML page: no Request-Id, no Stripe-Should-Retry."""
        emulator.configure(gateway_rate=1.0, gateway_answer=str(status))
        [sid] = emulator.seed()

        response = _update(api, sid, key="kg")

        assert (status, "text/html", None, None, None) == (
            response.status_code,
            response.headers["content-type"].split(";")[0],
            response.headers.get("Request-Id"),
            response.headers.get("Stripe-Should-Retry"),
            response.headers.get("Idempotency-Key"),
        )

    def test_update_applied_behind_the_gateway_is_replayed_under_its_key(
        self, emulator: Any, api: httpx.Client
    ) -> None:
        """Behind a 502 the update applied once; a retry under the same key replays it."""
        emulator.configure(gateway_rate=1.0, gateway_applies=True)
        [sid] = emulator.seed()
        _update(api, sid, key="kg")
        emulator.configure(gateway_rate=0.0)

        retry = _update(api, sid, key="kg")

        assert (200, "true", {sid: 1}) == (
            retry.status_code,
            retry.headers.get("Idempotent-Replayed"),
            emulator.stats()["applied"],
        )

    def test_delayed_update_lands_after_the_gateway_answered(
        self, emulator: Any, api: httpx.Client
    ) -> None:
        """With a delay, the change is not there when the 504 arrives, and lands later."""
        emulator.configure(gateway_rate=1.0, gateway_answer="504", gateway_delay_seconds=0.3)
        [sid] = emulator.seed()

        response = _update(api, sid, key="kg")
        before = api.get(f"{BASE}/{sid}").json()["metadata"]
        after = wait_behind_gateway(emulator)

        assert (504, {}, {sid: 1}) == (response.status_code, before, after["applied"])

    def test_gateway_without_apply_changes_nothing(self, emulator: Any, api: httpx.Client) -> None:
        """With gateway_applies false the request never reached Stripe."""
        emulator.configure(gateway_rate=1.0, gateway_applies=False)
        [sid] = emulator.seed()

        response = _update(api, sid)

        assert (502, {}) == (response.status_code, emulator.stats()["applied"])

    def test_misrouted_answer_is_another_session(self, emulator: Any, api: httpx.Client) -> None:
        """``200_other_session`` answers 200 with a session object whose id is not ours."""
        emulator.configure(gateway_rate=1.0, gateway_answer="200_other_session")
        [sid] = emulator.seed()

        response = _update(api, sid)

        body = response.json()
        assert (200, "identity.verification_session", True) == (
            response.status_code,
            body["object"],
            body["id"] != sid,
        )

    def test_retry_under_the_key_before_the_late_request_applies_once(
        self, emulator: Any, api: httpx.Client
    ) -> None:
        """Until the late request arrives its key is free: a retry runs, the late one replays."""
        emulator.configure(gateway_rate=1.0, gateway_delay_seconds=1.0)
        [sid] = emulator.seed()
        _update(api, sid, key="kg")
        emulator.configure(gateway_rate=0.0)

        retry = _update(api, sid, key="kg")
        stats = wait_behind_gateway(emulator)

        assert (200, None, 1, {sid: 1}) == (
            retry.status_code,
            retry.headers.get("Idempotent-Replayed"),
            stats["replayed"],
            stats["applied"],
        )

    def test_retry_under_a_new_key_applies_twice(self, emulator: Any, api: httpx.Client) -> None:
        """A client that gives up on the key and uses a new one gets the update applied twice."""
        emulator.configure(gateway_rate=1.0, gateway_delay_seconds=1.0)
        [sid] = emulator.seed()
        _update(api, sid, key="kg")
        emulator.configure(gateway_rate=0.0)

        _update(api, sid, key="kg-2")

        assert {sid: 2} == wait_behind_gateway(emulator)["applied"]


class TestReproducibility:
    """A seeded fault run repeats exactly."""

    def _run(self, emulator: Any, api: httpx.Client, seed: int) -> list[str]:
        emulator.reset()
        emulator.configure(
            seed=seed,
            rate_limit=0,
            fail_503_rate=0.25,
            fail_500_after_rate=0.25,
            lock_timeout_rate=0.2,
        )
        ids = emulator.seed(count=5)
        return [_outcome(_update(api, sid, key=f"{sid}-{n}")) for n in range(4) for sid in ids]

    def test_same_seed_same_outcomes(self, emulator: Any, api: httpx.Client) -> None:
        """Two runs with seed 3 see the same sequence of status codes."""
        first = self._run(emulator, api, 3)

        second = self._run(emulator, api, 3)

        assert first == second

    def test_other_seed_other_outcomes(self, emulator: Any, api: httpx.Client) -> None:
        """Seed 4 gives another sequence."""
        assert self._run(emulator, api, 3) != self._run(emulator, api, 4)

    def test_faults_skip_reads_unless_configured(self, emulator: Any, api: httpx.Client) -> None:
        """Retrieve is untouched by faults until faults_on_reads is set."""
        emulator.configure(fail_503_rate=1.0)
        [sid] = emulator.seed()
        before = api.get(f"{BASE}/{sid}").status_code
        emulator.configure(faults_on_reads=True)

        after = api.get(f"{BASE}/{sid}").status_code

        assert (200, 503) == (before, after)

"""Seeded faults over a socket: limits, lock timeouts, 5xx, hangs, drops, gateway errors."""

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


def _applied_within(emulator: Any, sid: str, seconds: float, count: int = 1) -> int:
    """How often the session was applied once ``count`` is reached, or after ``seconds``."""
    deadline = time.monotonic() + seconds
    while emulator.stats()["applied"].get(sid, 0) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return int(emulator.stats()["applied"].get(sid, 0))


def _replayed_within(emulator: Any, count: int, seconds: float) -> int:
    """The emulator's replay count once it reaches ``count``, or after ``seconds``."""
    deadline = time.monotonic() + seconds
    while emulator.stats()["replayed"] < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return int(emulator.stats()["replayed"])


class TestGatewayError:
    """A gateway in front of the API answers 502/504 while the update goes on behind it."""

    def test_answer_is_html_without_stripe_headers(self, emulator: Any, api: httpx.Client) -> None:
        """The client gets a 502 or 504 HTML page, no Request-Id and no Stripe headers."""
        emulator.configure(gateway_error_rate=1.0, gateway_error_applies=False)
        [sid] = emulator.seed()

        answer = _update(api, sid, key="kg")

        stripe_headers = {"request-id", "stripe-version", "idempotency-key", "stripe-should-retry"}
        assert (True, True, set(), {}) == (
            answer.status_code in (502, 504),
            answer.headers["content-type"].startswith("text/html"),
            stripe_headers & set(answer.headers),
            emulator.stats()["applied"],
        )

    def test_update_applies_after_the_answer_and_its_key_replays(
        self, emulator: Any, api: httpx.Client
    ) -> None:
        """Behind the error the update applies after the delay; a retry under its key replays."""
        emulator.configure(gateway_error_rate=1.0, gateway_apply_delay_ms=300)
        [sid] = emulator.seed()
        first = _update(api, sid, key="kg")
        emulator.configure(gateway_error_rate=0.0)

        applied = _applied_within(emulator, sid, seconds=10)
        after = _update(api, sid, key="kg")

        assert (True, 1, 200, "true", {sid: 1}) == (
            first.status_code in (502, 504),
            applied,
            after.status_code,
            after.headers.get("Idempotent-Replayed"),
            emulator.stats()["applied"],
        )

    def test_retry_under_the_key_before_the_late_request_applies_once(
        self, emulator: Any, api: httpx.Client
    ) -> None:
        """A retry under the key executes at once; the late request then replays it."""
        emulator.configure(gateway_error_rate=1.0, gateway_apply_delay_ms=1000)
        [sid] = emulator.seed()
        _update(api, sid, key="kg")
        emulator.configure(gateway_error_rate=0.0)

        retry = _update(api, sid, key="kg")
        replays = _replayed_within(emulator, 1, seconds=10)

        assert (200, None, 1, {sid: 1}) == (
            retry.status_code,
            retry.headers.get("Idempotent-Replayed"),
            replays,
            emulator.stats()["applied"],
        )

    def test_retry_under_a_new_key_applies_twice(self, emulator: Any, api: httpx.Client) -> None:
        """A client that gives up on the key and uses a new one gets the update applied twice."""
        emulator.configure(gateway_error_rate=1.0, gateway_apply_delay_ms=1000)
        [sid] = emulator.seed()
        _update(api, sid, key="kg")
        emulator.configure(gateway_error_rate=0.0)

        _update(api, sid, key="kg-2")

        assert 2 == _applied_within(emulator, sid, seconds=10, count=2)

    def test_update_not_applied_frees_its_key(self, emulator: Any, api: httpx.Client) -> None:
        """With gateway_error_applies false nothing changes and a retry under the key executes."""
        emulator.configure(gateway_error_rate=1.0, gateway_error_applies=False)
        [sid] = emulator.seed()
        _update(api, sid, key="kg")
        emulator.configure(gateway_error_rate=0.0)

        retry = _update(api, sid, key="kg")

        assert (200, None, {sid: 1}) == (
            retry.status_code,
            retry.headers.get("Idempotent-Replayed"),
            emulator.stats()["applied"],
        )


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

"""Unit tests of the request deadline's pure parts: its scope, its expiry, the proxy lookup."""

from __future__ import annotations

import httpcore
import pytest

from tests.conftest import TEST_API_KEY
from vsbatch.errors import ConfigError
from vsbatch.stripe.client import StripeClient
from vsbatch.stripe.http_deadline import DeadlineBackend, deadline, environment_proxy, time_left


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the machine's proxy settings."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


class TestDeadlineScope:
    def test_no_deadline_outside_a_block(self) -> None:
        """Without a deadline block there is no time limit."""
        assert time_left() is None

    def test_block_sets_and_restores_the_deadline(self) -> None:
        """Inside a block the time left counts down from its seconds; after it, none is left."""
        with deadline(30.0):
            left = time_left()

        assert (True, None) == (left is not None and 29.0 < left <= 30.0, time_left())

    def test_expired_deadline_refuses_to_connect(self) -> None:
        """Once the deadline has passed, no connection is even attempted."""
        with deadline(0.0), pytest.raises(httpcore.ConnectTimeout):
            DeadlineBackend().connect_tcp("192.0.2.1", 9, timeout=5.0)


class TestEnvironmentProxy:
    def test_https_proxy_applies_to_https_urls(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """HTTPS_PROXY names the proxy for the Stripe API."""
        monkeypatch.setenv("HTTPS_PROXY", "http://proxy.local:3128")

        assert "http://proxy.local:3128" == environment_proxy("https://api.stripe.com")

    def test_no_proxy_bypasses(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A host listed in NO_PROXY is reached directly."""
        monkeypatch.setenv("HTTPS_PROXY", "http://proxy.local:3128")
        monkeypatch.setenv("NO_PROXY", "api.stripe.com")

        assert environment_proxy("https://api.stripe.com") is None

    def test_proxy_without_scheme_is_http(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A bare host:port proxy is an http:// proxy, as httpx reads it."""
        monkeypatch.setenv("HTTPS_PROXY", "proxy.local:3128")

        assert "http://proxy.local:3128" == environment_proxy("https://api.stripe.com")

    def test_socks_proxy_is_a_config_error_without_the_url(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An unsupported proxy scheme is refused in one line that does not quote the proxy."""
        monkeypatch.setenv("ALL_PROXY", "socks5://user:pw@proxy.local:1080")

        with pytest.raises(ConfigError) as caught:
            StripeClient(TEST_API_KEY)

        assert "pw@" not in str(caught.value)


class TestSharedTls:
    def test_clients_share_one_tls_context(self) -> None:
        """Two Stripe clients of a process share one TLS context (each costs ~70 ms to build,
        and a worker builds one client per thread)."""
        first = StripeClient(TEST_API_KEY, base_url="https://api.stripe.test")
        second = StripeClient(TEST_API_KEY, base_url="https://api.stripe.test")

        contexts = [c._http._transport._pool._ssl_context for c in (first, second)]  # type: ignore[attr-defined]

        assert contexts[0] is contexts[1]

    def test_threads_starting_together_build_one_tls_context(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A worker's threads build their clients at the same moment: the TLS context is
        still built once (a plain cache let each of 256 threads load the CA bundle: a quarter
        of a worker's CPU)."""
        import threading
        import time

        from vsbatch.stripe import http_deadline

        built: list[int] = []

        def slow_context(verify: bool = True) -> object:
            built.append(1)
            time.sleep(0.05)  # loading a CA bundle takes this long
            return object()

        monkeypatch.setattr(http_deadline.httpx, "create_ssl_context", slow_context)
        http_deadline._ssl_context.cache_clear()
        start = threading.Barrier(16)
        got: list[object] = []

        def build() -> None:
            start.wait()
            got.append(http_deadline.shared_ssl_context(False))

        threads = [threading.Thread(target=build) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        http_deadline._ssl_context.cache_clear()

        assert (1, 1) == (len(built), len({id(context) for context in got}))

"""A total deadline per request, over a real socket: a server that trickles cannot hold a call.

The trickling server sends one byte every 0.5 s, always inside the client's 1 s read timeout,
so only a deadline on the whole request (connect + write + read) ends the call.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.conftest import TEST_API_KEY
from vsbatch.errors import APIConnectionError
from vsbatch.stripe.client import StripeClient
from vsbatch.stripe.http_deadline import DeadlineTransport, deadline
from vsbatch.stripe.retry import RetryPolicy, decide

STATUS_LINE = b"HTTP/1.1 200 OK\r\n"
HEADERS = b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
TRICKLE_EVERY = 0.5
MAX_BYTES = 60  # the server gives up after 30 s, far past every deadline below


@dataclass
class Trickler:
    """A TCP server that answers every request one byte at a time."""

    url: str
    keys: list[str | None] = field(default_factory=list)


def _serve_trickle(conn: socket.socket, keys: list[str | None], *, headers_too: bool) -> None:
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = conn.recv(65536)
        if not chunk:
            return
        request += chunk
    key = None
    for line in request.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"idempotency-key":
            key = value.strip().decode()
    keys.append(key)
    answer = STATUS_LINE + HEADERS + b"{" * MAX_BYTES
    start = 0 if headers_too else len(STATUS_LINE + HEADERS)
    try:
        conn.sendall(answer[:start])
        for i in range(start, min(len(answer), start + MAX_BYTES)):
            conn.sendall(answer[i : i + 1])
            time.sleep(TRICKLE_EVERY)
    except OSError:
        return  # the client gave up: what the tests want


@pytest.fixture(params=["body", "headers"])
def trickler(request: pytest.FixtureRequest) -> Iterator[Trickler]:
    """A trickling server on a free loopback port: the body, or even the headers, byte by byte."""
    keys: list[str | None] = []
    headers_too = request.param == "headers"

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            _serve_trickle(self.request, keys, headers_too=headers_too)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Trickler(f"http://127.0.0.1:{server.server_address[1]}", keys)
    finally:
        server.shutdown()
        server.server_close()


def client_for(trickler: Trickler, **kwargs: float) -> StripeClient:
    return StripeClient(TEST_API_KEY, base_url=trickler.url, **{"timeout": 1.0, **kwargs})


class TestTotalDeadline:
    def test_trickled_update_ends_by_the_default_deadline(self, trickler: Trickler) -> None:
        """With 0.5 s connect and 1 s read timeouts, a trickled update ends well within 3 s."""
        with client_for(trickler, connect_timeout=0.5) as client:
            started = time.monotonic()
            with pytest.raises(APIConnectionError) as caught:
                client.update("vs_123", [("metadata[a]", "1")], idempotency_key="k1")
            elapsed = time.monotonic() - started

        assert (True, True) == (elapsed < 3.0, caught.value.may_have_applied), elapsed

    def test_trickled_update_is_ambiguous_and_retried(self, trickler: Trickler) -> None:
        """The deadline's error is a timeout that may have applied: retry under the same key."""
        with client_for(trickler, deadline=1.0) as client:
            with pytest.raises(APIConnectionError) as caught:
                client.update("vs_123", [("metadata[a]", "1")], idempotency_key="k1")

        decision = decide(caught.value)
        assert (True, True, "timeout", False) == (
            decision.retry,
            decision.ambiguous,
            decision.reason,
            decision.stored,
        )

    def test_retries_after_the_deadline_keep_the_key(self, trickler: Trickler) -> None:
        """Two attempts, each cut at its deadline, both carry the caller's idempotency key."""
        policy = RetryPolicy(max_attempts=2, max_seconds=30, initial_wait=0, max_wait=0)
        with client_for(trickler, deadline=1.0) as client:
            started = time.monotonic()
            with pytest.raises(APIConnectionError):
                policy.retrying()(client.update, "vs_123", [], idempotency_key="k1")
            elapsed = time.monotonic() - started

        assert (["k1", "k1"], True) == (trickler.keys, elapsed < 5.0)

    def test_trickled_read_back_ends_by_its_deadline(self, trickler: Trickler) -> None:
        """A GET is bounded the same way, and is not ambiguous."""
        with client_for(trickler, deadline=1.0) as client:
            started = time.monotonic()
            with pytest.raises(APIConnectionError) as caught:
                client.retrieve("vs_123")
            elapsed = time.monotonic() - started

        assert (True, False) == (elapsed < 3.0, caught.value.may_have_applied)


class TestProxy:
    def test_environment_proxy_is_used_under_the_deadline(
        self, trickler: Trickler, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """HTTP_PROXY still applies (as httpx's own transport does) and the deadline holds."""
        monkeypatch.setenv("HTTP_PROXY", trickler.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = StripeClient(TEST_API_KEY, base_url="http://stripe.invalid", deadline=1.0)
        with client:
            started = time.monotonic()
            with pytest.raises(APIConnectionError):
                client.update("vs_123", [], idempotency_key="k1")
            elapsed = time.monotonic() - started

        assert (["k1"], True) == (trickler.keys, elapsed < 3.0)


class TestDeadlineScope:
    def test_deadline_is_per_thread(self) -> None:
        """A deadline set in one thread does not bound requests made in another."""
        seen: list[bool] = []

        def other() -> None:
            from vsbatch.stripe.http_deadline import time_left

            seen.append(time_left() is None)

        with deadline(0.5):
            worker = threading.Thread(target=other)
            worker.start()
            worker.join()

        assert [True] == seen

    def test_transport_without_deadline_waits_out_the_server(self) -> None:
        """Outside a deadline block the transport behaves as httpx's own (nothing cut short)."""

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.recv(65536)
                time.sleep(0.3)  # slower than nothing, faster than the 2 s read timeout
                self.request.sendall(STATUS_LINE + b"Content-Length: 2\r\n\r\n{}")

        server = socketserver.TCPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.handle_request, daemon=True).start()
        transport = DeadlineTransport(limits=httpx.Limits())
        try:
            with httpx.Client(transport=transport, timeout=2.0) as client:
                response = client.get(f"http://127.0.0.1:{server.server_address[1]}/")
        finally:
            server.server_close()

        assert (200, b"{}") == (response.status_code, response.content)

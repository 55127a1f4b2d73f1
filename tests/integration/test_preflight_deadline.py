"""The preflight and ``doctor`` end by one total deadline, however slowly a server answers.

The server below sends its status line and headers, then one byte of the body every 0.5 s:
every read succeeds inside the read timeout, so only a deadline on the whole request ends it.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import TEST_API_KEY
from vsbatch.config import Settings
from vsbatch.errors import ConfigError
from vsbatch.ops import doctor
from vsbatch.stripe import preflight

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"


def _trickle(conn: socket.socket, requests: list[float]) -> None:
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = conn.recv(65536)
        if not chunk:
            return
        request += chunk
    requests.append(time.monotonic())
    try:
        conn.sendall(ANSWER)
        for _ in range(120):  # the server gives up after 60 s, far past every budget below
            conn.sendall(b" ")
            time.sleep(0.5)
    except OSError:
        return


@pytest.fixture
def slow_server() -> Iterator[tuple[str, list[float]]]:
    """A loopback server that answers every request one body byte every 0.5 s."""
    requests: list[float] = []

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            _trickle(self.request, requests)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


def _settings(url: str) -> Settings:
    return Settings(_env_file=None, stripe_api_key=TEST_API_KEY, stripe_api_base=url)


class TestPreflightDeadline:
    def test_trickled_answer_ends_by_the_budget_after_one_try(
        self, slow_server: tuple[str, list[float]]
    ) -> None:
        """A 2 s budget ends the preflight within seconds, after one request, saying so."""
        url, requests = slow_server
        started = time.monotonic()

        with pytest.raises(ConfigError) as caught:
            preflight.check(_settings(url), budget=2.0)
        elapsed = time.monotonic() - started

        assert "no complete answer within 2s" in str(caught.value)
        assert (1, True) == (len(requests), elapsed < 8.0), elapsed

    def test_default_budget_is_about_fifteen_seconds(self) -> None:
        """The whole preflight, all tries, is bounded by ~15 s by default."""
        assert 15.0 == preflight.BUDGET


class TestDoctorDeadline:
    def test_doctor_preflight_ends_by_the_budget(
        self, slow_server: tuple[str, list[float]]
    ) -> None:
        """doctor's preflight check uses the same deadline and fails within seconds."""
        url, _requests = slow_server
        started = time.monotonic()

        checks = doctor.stripe_checks(_settings(url), TEST_API_KEY, budget=2.0)
        elapsed = time.monotonic() - started

        assert ("fail", True) == (checks[0].level, elapsed < 8.0), elapsed
        assert "no complete answer within 2s" in checks[0].detail

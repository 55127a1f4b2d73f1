"""Ctrl-C says only what is true where it happened: nothing written, nothing submitted...

Each command is stopped by a real SIGINT while its preflight waits on a server that accepts
the request and never answers (the server tells the test when the request has arrived).
"""

from __future__ import annotations

import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from tests.conftest import TEST_API_KEY
from vsbatch.cli import live_render
from vsbatch.cli.main import cli
from vsbatch.model.row import NewRow
from vsbatch.store.ledger import Ledger


@pytest.fixture
def silent_server() -> Iterator[tuple[str, threading.Event]]:
    """A loopback server that reads each request and never answers; the event marks a request."""
    arrived = threading.Event()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            conn: socket.socket = self.request
            conn.recv(65536)
            arrived.set()
            conn.recv(1)  # until the client goes away

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", arrived
    finally:
        server.shutdown()
        server.server_close()


def _interrupt(args: list[str], env: dict[str, str], arrived: threading.Event) -> tuple[int, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VSBATCH_", "STRIPE_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vsbatch", *args],
        env={**base, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert arrived.wait(60), "the preflight never reached the server"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, stderr.strip()


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("plan", "interrupted: nothing was written"),
        ("submit", "interrupted: nothing was submitted"),
        ("verify", "interrupted: nothing was changed"),  # its argument is never read
    ],
)
def test_ctrl_c_before_any_batch_says_what_is_true(
    command: str,
    expected: str,
    silent_server: tuple[str, threading.Event],
    redis_url: str,
    redis_client: redis.Redis,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    """Ctrl-C during the preflight of plan or submit exits 130 with its own one line."""
    url, arrived = silent_server
    csv = tmp_path / "a.csv"
    csv.write_text("id,metadata.x\nvs_1AAAAAAAAAAAAAAAAAAAAAAA,1\n", encoding="utf-8")
    env = {
        "VSBATCH_REDIS_URL": redis_url,
        "VSBATCH_STRIPE_API_KEY": TEST_API_KEY,
        "VSBATCH_STRIPE_API_BASE": url,
        "VSBATCH_DATA_DIR": str(data_dir),
    }

    code, stderr = _interrupt([command, str(csv)], env, arrived)

    assert (130, expected) == (code, stderr)


def test_ctrl_c_while_watching_stops_watching(
    redis_url: str, redis_client: redis.Redis, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C during ``status --watch`` says it stopped watching, not how to resume."""
    ledger = Ledger(redis_client)
    batch = ledger.create_batch(name="w", kind="csv", source="x.csv")
    ledger.add_rows(batch.id, [NewRow(2, "vs_1AAAA", None, {"type": "document"})])
    ledger.open_batch(batch.id)

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(live_render, "watch_status", interrupted)
    env = {"VSBATCH_REDIS_URL": redis_url, "VSBATCH_DATA_DIR": str(data_dir)}

    result = CliRunner().invoke(cli, ["status", batch.id, "--watch"], env=env)

    assert (130, "stopped watching") == (result.exit_code, result.stderr.splitlines()[-1])

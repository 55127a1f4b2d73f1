"""The embedded Redis: data survives a crash, only its own account can use it, and one
data directory has one server, shared by the processes that use it."""

from __future__ import annotations

import fcntl
import json
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from tests.conftest import TEST_API_KEY
from tests.helpers import outside_env
from vsbatch.errors import ConfigError
from vsbatch.store.embedded_redis import EmbeddedRedis
from vsbatch.store.ledger import Ledger
from vsbatch.store.local_redis import LocalRedis


def test_data_survives_kill_and_restart(tmp_path: Path) -> None:
    """A key written before SIGKILL is there after a restart on the same port."""
    server = EmbeddedRedis(tmp_path).start()
    try:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        client.close()
        time.sleep(1.2)  # appendfsync everysec: the write reaches disk within a second

        server.kill()
        server.restart()

        assert b"v" == redis.Redis.from_url(server.url).get("k")
    finally:
        server.stop()


class TestPrivacy:
    def test_a_client_without_the_password_is_refused(self, tmp_path: Path) -> None:
        """The server requires its password: a client that only knows the port gets nothing."""
        server = EmbeddedRedis(tmp_path).start()
        try:
            anonymous = redis.Redis(host="127.0.0.1", port=server.port)

            with pytest.raises(redis.AuthenticationError):
                anonymous.ping()
            anonymous.close()
        finally:
            server.stop()

    def test_directory_and_files_are_private(self, tmp_path: Path) -> None:
        """The data directory is 0700 and every file in it (AOF, state, password) is 0600."""
        data = tmp_path / "redis"
        with LocalRedis(data) as local:
            client = redis.Redis.from_url(local.url)
            client.set("ledger", "secret rows")
            client.close()
            time.sleep(1.2)  # appendfsync everysec

            modes = {
                str(p.relative_to(data)): stat.S_IMODE(p.stat().st_mode) for p in data.rglob("*")
            }

        assert 0o700 == stat.S_IMODE(data.stat().st_mode)
        assert {"password", "server.json", "valkey.conf"} <= set(modes)
        assert any("appendonly" in name for name in modes)
        assert {} == {name: oct(mode) for name, mode in modes.items() if mode & 0o077}

    def test_a_restart_keeps_the_password(self, tmp_path: Path) -> None:
        """A client's URL still works after the server restarts (the password is reused)."""
        server = EmbeddedRedis(tmp_path).start()
        client = redis.Redis.from_url(server.url)
        try:
            server.kill()
            EmbeddedRedis(tmp_path, port=server.port).start()

            assert client.ping()
        finally:
            client.close()
            EmbeddedRedis(tmp_path, port=server.port).adopt(_pid(tmp_path, server.port)).stop()


ORPHANING = """
import os, signal
from pathlib import Path
from vsbatch.store.local_redis import LocalRedis
print(LocalRedis(Path({data!r})).open().server.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _port(data: Path) -> int:
    return int(json.loads((data / "server.json").read_text())["port"])


def _pid(data: Path, port: int) -> int:
    client = redis.Redis.from_url(EmbeddedRedis(data, port=port).url)
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


class TestSharing:
    def test_a_second_user_attaches_to_the_running_server(self, tmp_path: Path) -> None:
        """Two users of one data directory get one server, not two on one append-only file."""
        with LocalRedis(tmp_path) as first, LocalRedis(tmp_path) as second:
            assert first.owner and not second.owner
            assert first.url == second.url
            assert first.server is not None and second.server is not None
            assert first.server.pid == second.server.pid

    def test_the_server_outlives_its_starter_while_another_uses_it(self, tmp_path: Path) -> None:
        """The starter leaves first: the server stays, and the other user takes it over."""
        first = LocalRedis(tmp_path).open()
        second = LocalRedis(tmp_path).open()
        client = redis.Redis.from_url(second.url)
        try:
            first.close()

            assert client.ping()
            _wait_for(lambda: second.owner)
        finally:
            client.close()
            second.close()

    def test_the_last_user_out_stops_the_server(self, tmp_path: Path) -> None:
        """When nobody uses it any more, the server is stopped and its state file removed."""
        local = LocalRedis(tmp_path).open()
        server = local.server
        assert server is not None

        local.close()

        assert not server.alive()
        assert not (tmp_path / "server.json").exists()

    def test_two_users_leaving_together_stop_the_server(self, tmp_path: Path) -> None:
        """The owner and the other user leave at the same moment: the server is not orphaned."""
        first = LocalRedis(tmp_path).open()
        second = LocalRedis(tmp_path).open()
        server = first.server
        assert server is not None
        leaving = [threading.Thread(target=local.close) for local in (first, second)]

        for thread in leaving:
            thread.start()
        for thread in leaving:
            thread.join(timeout=30)

        assert not server.alive()

    def test_a_server_left_by_killed_users_is_adopted_then_stopped(self, tmp_path: Path) -> None:
        """Its only user SIGKILLed, the server runs on; the next user adopts and stops it."""
        done = subprocess.run(
            [sys.executable, "-c", ORPHANING.format(data=str(tmp_path))],
            capture_output=True,
            text=True,
            timeout=60,
        )
        orphan = EmbeddedRedis(tmp_path, port=_port(tmp_path)).adopt(int(done.stdout))
        assert orphan.answers(), done.stderr

        with LocalRedis(tmp_path) as local:
            assert local.owner
            assert local.server is not None and orphan.pid == local.server.pid

        _wait_for(lambda: not orphan.alive())

    def test_the_owner_restarts_a_killed_server(self, tmp_path: Path) -> None:
        """SIGKILLed, the server comes back on the same port with the same data and password."""
        with LocalRedis(tmp_path) as local:
            client = redis.Redis.from_url(local.url)
            client.set("k", "v")
            time.sleep(1.2)  # appendfsync everysec
            assert local.server is not None
            killed = local.server.pid

            local.server.kill()
            _wait_for(lambda: local.server is not None and local.server.answers())

            assert killed != local.server.pid
            assert b"v" == client.get("k")
            client.close()

    def test_an_owner_whose_server_never_answers_gets_one_line(self, tmp_path: Path) -> None:
        """Another process owns the directory but runs no server: a ConfigError says what to do."""
        with (tmp_path / "owner.lock").open("wb") as held:
            fcntl.flock(held, fcntl.LOCK_EX)

            with pytest.raises(ConfigError, match="stop that process, or set VSBATCH_REDIS_URL"):
                LocalRedis(tmp_path, attach_timeout=0.5).open()


def _wait_for(condition: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


APP_CODE = """
from vsbatch import enqueue_update
print(enqueue_update("vs_" + "A" * 24, {"metadata": {"source": "app"}}).batch_id)
"""


def test_the_application_api_uses_the_running_embedded_server(tmp_path: Path) -> None:
    """Application code without VSBATCH_REDIS_URL enqueues to the data directory's server."""
    env = outside_env(VSBATCH_DATA_DIR=str(tmp_path), VSBATCH_STRIPE_API_KEY=TEST_API_KEY)
    with LocalRedis(tmp_path / "redis") as local:  # the server a `vsbatch worker` runs
        done = subprocess.run(
            [sys.executable, "-c", APP_CODE], env=env, capture_output=True, text=True, timeout=60
        )
        assert 0 == done.returncode, done.stderr
        client = redis.Redis.from_url(local.url)
        batch = Ledger(client).get_batch(done.stdout.strip())
        client.close()

    assert 1 == batch.total

"""The embedded Redis keeps its data across a crash (append-only file)."""

from __future__ import annotations

import time
from pathlib import Path

import redis

from vsbatch.embedded_redis import EmbeddedRedis


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

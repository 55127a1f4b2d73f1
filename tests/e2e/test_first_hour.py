"""The first hour: what ``status`` and ``doctor`` tell a new user, as real processes."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import TEST_API_KEY
from tests.helpers import closed_port
from tests.helpers import run_vsbatch as vsbatch
from vsbatch.store.keys import Keys
from vsbatch.store.liveness import Liveness


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    return closed_port()


def submitted(env: dict[str, str], emulator: Any, tmp_path: Path) -> str:
    """The id of a two-row batch ``vsbatch submit`` queued (no worker runs)."""
    path = tmp_path / "in.csv"
    rows = "".join(f"{s},gold\n" for s in emulator.seed(count=2))
    path.write_text("id,metadata.tier\n" + rows, encoding="utf-8")
    result = vsbatch(env, "submit", str(path))
    assert 0 == result.returncode, result.stderr
    return result.stdout.strip()


class TestStatusWithoutWorkers:
    def test_status_of_a_queued_batch_says_no_live_worker(
        self, env: dict[str, str], emulator: Any, tmp_path: Path
    ) -> None:
        """``status BATCH`` of a submitted batch with no worker says so and how to start one."""
        batch_id = submitted(env, emulator, tmp_path)

        result = vsbatch(env, "status", batch_id)

        assert 0 == result.returncode, result.stderr
        assert "no live worker" in result.stderr
        assert "vsbatch worker" in result.stderr
        assert f"vsbatch resume {batch_id}" in result.stderr

    def test_status_listing_says_no_live_worker(
        self, env: dict[str, str], emulator: Any, tmp_path: Path
    ) -> None:
        """``status`` (all batches) with an open batch and no worker says so once."""
        submitted(env, emulator, tmp_path)

        result = vsbatch(env, "status")

        assert (0, 1) == (result.returncode, result.stderr.count("no live worker")), result.stderr

    def test_a_beating_worker_silences_the_hint(
        self,
        env: dict[str, str],
        emulator: Any,
        tmp_path: Path,
        redis_client: redis.Redis,
    ) -> None:
        """With a worker heartbeat in Redis, ``status`` does not claim no worker runs."""
        batch_id = submitted(env, emulator, tmp_path)
        Liveness(redis_client, Keys(), "elsewhere:1:abc", interval=60).beat()

        result = vsbatch(env, "status", batch_id)

        assert (0, "") == (result.returncode, result.stderr)


def lines(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """``doctor``'s output as check name -> its line."""
    found = {}
    for line in result.stdout.splitlines():
        words = line.split()
        if words and words[0] in ("ok", "warn", "fail"):
            name = line[6:21].strip()
            found[name] = line
    return found


class TestDoctor:
    def test_all_ok_exits_0_and_names_the_key_without_showing_it(
        self, env: dict[str, str], emulator: Any, redis_client: redis.Redis
    ) -> None:
        """With the emulator, an AOF Redis and a beating worker, every check is ok: exit 0."""
        Liveness(redis_client, Keys(), "elsewhere:1:abc", interval=60).beat()

        result = vsbatch(env, "doctor")

        found = lines(result)
        assert 0 == result.returncode, result.stdout + result.stderr
        assert {
            "key",
            "api base",
            "stripe-version",
            "preflight",
            "clock vs api",
            "redis",
            "persistence",
            "clock vs redis",
            "workers",
            "results",
        } == set(found)
        assert all(line.startswith("ok") for line in found.values()), found
        assert "sk_test_…(redacted), secret key, test mode" in found["key"]
        assert "AOF on" in found["persistence"]
        assert TEST_API_KEY not in result.stdout + result.stderr

    def test_no_worker_is_a_warning_with_its_fix_exit_1(
        self, env: dict[str, str], emulator: Any
    ) -> None:
        """No worker heartbeat: the workers line warns, says how to start one, exit 1."""
        result = vsbatch(env, "doctor")

        assert 1 == result.returncode, result.stdout + result.stderr
        assert lines(result)["workers"].startswith("warn")
        assert "fix: 'vsbatch worker'" in result.stdout

    def test_an_unreachable_api_base_fails_with_its_fix_exit_2(
        self, env: dict[str, str], unused_port: int
    ) -> None:
        """A base nothing listens on: the preflight line fails with a fix; exit 2."""
        env = {**env, "VSBATCH_STRIPE_API_BASE": f"http://127.0.0.1:{unused_port}"}

        result = vsbatch(env, "doctor")

        assert 2 == result.returncode, result.stdout + result.stderr
        assert lines(result)["preflight"].startswith("fail")
        assert "cannot connect" in result.stdout
        assert "fix: check VSBATCH_STRIPE_API_BASE" in result.stdout

    def test_an_unreachable_redis_fails_with_its_fix_exit_2(
        self, env: dict[str, str], emulator: Any, unused_port: int
    ) -> None:
        """A Redis URL nothing listens on: the redis line fails with a fix, no traceback."""
        env = {**env, "VSBATCH_REDIS_URL": f"redis://:pw@127.0.0.1:{unused_port}/0"}

        result = vsbatch(env, "doctor")

        assert 2 == result.returncode, result.stdout + result.stderr
        assert lines(result)["redis"].startswith("fail")
        assert "fix: check VSBATCH_REDIS_URL" in result.stdout
        assert "Traceback" not in result.stderr
        assert ":pw@" not in result.stdout

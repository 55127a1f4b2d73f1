"""The first hour: what ``status`` and ``doctor`` tell a new user, as real processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import redis

from vsbatch.ledger import Keys
from vsbatch.liveness import Liveness


def vsbatch(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m vsbatch ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "vsbatch", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


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

"""``vsbatch run`` when Redis starts refusing writes (MISCONF) half way through a batch.

The Redis is a real private Valkey server made to refuse writes as on a full disk (see
``test_disk_full.Disk``); the workers are ``run``'s own, in its process.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.integration.test_disk_full import Disk, _env

ROWS = 40


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    """A private server for one test (the shared test Redis is never made to fail)."""
    server = Disk(tmp_path / "valkey")
    try:
        yield server
    finally:
        server.stop()


def _batch_under_way(client: redis.Redis) -> str | None:
    """The batch once a quarter of its rows have succeeded."""
    for key in client.scan_iter("vsbatch:b:*:counts"):
        if int(client.hget(key, "succeeded") or 0) >= ROWS // 4:
            return str(key.decode().split(":")[2])
    return None


def test_run_ends_with_one_line_and_loses_nothing(
    disk: Disk, data_dir: Path, tmp_path: Path, emulator: Any
) -> None:
    """Writes refused mid-run: ``run`` ends at once with one line (exit 2, no traceback)
    naming the batch to resume, and once writes are accepted again ``resume`` finishes it."""
    # Given a run that takes a while (slow Stripe, two workers)
    ids = emulator.seed(count=ROWS)
    emulator.configure(latency_ms=200)
    path = tmp_path / "in.csv"
    path.write_text("id,metadata.tier\n" + "".join(f"{i},gold\n" for i in ids))
    env = {
        **_env(disk.url, data_dir),
        "VSBATCH_STRIPE_API_BASE": emulator.url,
        "VSBATCH_CONCURRENCY": "2",
        "VSBATCH_CHUNK_SIZE": "5",
    }
    run = subprocess.Popen(
        [sys.executable, "-m", "vsbatch", "run", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # When Redis refuses writes once a quarter of the rows are final
    deadline = time.monotonic() + 60
    batch = None
    while batch is None and run.poll() is None and time.monotonic() < deadline:
        batch = _batch_under_way(disk.client)
        time.sleep(0.02)
    assert batch is not None, "the run never finished a row"
    disk.fill()
    try:
        _, stderr = run.communicate(timeout=60)
    finally:
        run.kill()

    # Then: one line, exit 2, the batch to resume named
    assert 2 == run.returncode, stderr
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert lines[-1].startswith("error: Redis refuses writes"), lines
    assert 1 == stderr.count("Redis refuses writes"), stderr
    assert f"vsbatch resume {batch}" in lines[-1], stderr
    # And nothing is lost: once writes are accepted, resume brings every row to an end
    disk.repair()
    done = subprocess.run(
        [sys.executable, "-m", "vsbatch", "resume", batch],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert 0 == done.returncode, done.stderr
    succeeded = disk.client.hget(f"vsbatch:b:{batch}:counts", "succeeded")
    assert ROWS == int(succeeded or 0)

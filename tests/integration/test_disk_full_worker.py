"""A ``vsbatch worker`` process when Redis refuses writes (MISCONF, as on a full disk).

The Redis is a real private Valkey server made to refuse writes (``test_disk_full.Disk``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_disk_full import Disk, _env

ROWS = 6


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    """A private server for one test (the shared test Redis is never made to fail)."""
    server = Disk(tmp_path / "valkey")
    try:
        yield server
    finally:
        server.stop()


def _wait_for(what: str, done: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)


def test_worker_outlives_refused_writes_and_resumes(
    disk: Disk, data_dir: Path, tmp_path: Path, emulator: Any
) -> None:
    """A worker does not die while Redis refuses writes; once writes are accepted again it
    works the queue again, without a restart."""
    env = {**_env(disk.url, data_dir), "VSBATCH_STRIPE_API_BASE": emulator.url}
    worker = subprocess.Popen(
        [sys.executable, "-m", "vsbatch", "worker", "--concurrency", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for("the worker beats", lambda: list(disk.client.scan_iter("vsbatch:alive:*")))
        # When Redis refuses writes for several seconds
        disk.fill()
        time.sleep(8)
        assert worker.poll() is None, "the worker died while Redis refused writes"
        disk.repair()
        # Then the same worker applies a batch submitted afterwards
        ids = emulator.seed(count=ROWS)
        path = tmp_path / "in.csv"
        path.write_text("id,metadata.tier\n" + "".join(f"{i},gold\n" for i in ids))
        submitted = subprocess.run(
            [sys.executable, "-m", "vsbatch", "submit", str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert 0 == submitted.returncode, submitted.stderr

        def all_succeeded() -> bool:
            keys = list(disk.client.scan_iter("vsbatch:b:*:counts"))
            return bool(keys) and ROWS == int(disk.client.hget(keys[0], "succeeded") or 0)

        _wait_for("the batch succeeds", all_succeeded, seconds=90)
    finally:
        worker.terminate()
        try:
            _, stderr = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            _, stderr = worker.communicate()
    assert "Unrecoverable error" not in stderr, stderr
    assert "Traceback" not in stderr, stderr
    assert 1 == stderr.count("Redis refuses writes"), stderr

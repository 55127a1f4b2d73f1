"""``-o`` through a symlink to /dev/stdout writes into the pipe, never replacing the link."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import redis

from tests.conftest import TEST_API_KEY
from vsbatch.model.row import NewRow
from vsbatch.store.ledger import Ledger


def test_link_to_dev_stdout_writes_into_the_pipe(
    redis_url: str, redis_client: redis.Redis, data_dir: Path, tmp_path: Path
) -> None:
    """``failures B -o link`` (link -> /dev/stdout) sends the CSV down stdout; the link stays."""
    ledger = Ledger(redis_client)
    batch = ledger.create_batch(name="r", kind="csv", source="x.csv")
    ledger.add_rows(batch.id, [NewRow(2, "vs_bad-1", None, None, rejection=("id", "bad id"))])
    ledger.open_batch(batch.id)
    link = tmp_path / "out"
    link.symlink_to("/dev/stdout")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VSBATCH_", "STRIPE_"))}
    env = {
        **base,
        "VSBATCH_REDIS_URL": redis_url,
        "VSBATCH_STRIPE_API_KEY": TEST_API_KEY,
        "VSBATCH_DATA_DIR": str(data_dir),
    }

    done = subprocess.run(
        [sys.executable, "-m", "vsbatch", "failures", batch.id, "-o", str(link)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert (0, True) == (done.returncode, "vs_bad-1" in done.stdout), done.stderr
    assert (True, "/dev/stdout") == (link.is_symlink(), os.readlink(link))

"""``vsbatch run`` with default settings keeps enough requests in flight for its rate."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import TEST_API_KEY
from vsbatch.bootstrap import bootstrap
from vsbatch.config import Settings
from vsbatch.store.local_redis import LocalRedis

ROWS = 100
LATENCY_MS = 2000


def _finish_times(data_dir: Path) -> list[float]:
    """Every row's finish time (ledger ``updated_at``), read back from the run's Redis."""
    with LocalRedis(data_dir / "redis") as local:
        deps = bootstrap(Settings(_env_file=None, redis_url=local.url))
        try:
            (batch,) = deps.ledger.list_batches()
            return [row.updated_at for row in deps.ledger.iter_rows(batch.id)]
        finally:
            deps.close()


def test_default_threads_send_a_slow_batch_at_once(
    emulator: Any, tmp_path: Path, data_dir: Path
) -> None:
    """100 rows of 2 s each at 100/s all finish within a few seconds of one another; the old
    fixed 16 threads needed at least 7 rounds of 2 s in one thread (12 s from first to last)."""
    # Given 100 sessions that answer after 2 s, and nothing set but the base, key and rate
    emulator.configure(latency_ms=LATENCY_MS, rate_limit=0)
    ids = emulator.seed(count=ROWS)
    path = tmp_path / "in.csv"
    path.write_text("id,metadata.tier\n" + "".join(f"{i},gold\n" for i in ids), encoding="utf-8")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VSBATCH_", "STRIPE_"))}
    env = {
        **base,
        "VSBATCH_STRIPE_API_BASE": emulator.url,
        "VSBATCH_STRIPE_API_KEY": TEST_API_KEY,
        "VSBATCH_DATA_DIR": str(data_dir),
        "VSBATCH_RATE_LIMIT": "100",
    }

    # When it runs with the default threads
    result = subprocess.run(
        [sys.executable, "-m", "vsbatch", "run", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )

    # Then every row succeeded, and the last finished soon after the first
    assert 0 == result.returncode, result.stderr
    times = _finish_times(data_dir)
    assert ROWS == len(times)
    assert max(times) - min(times) < 6.0, max(times) - min(times)

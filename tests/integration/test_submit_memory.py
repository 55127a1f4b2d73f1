"""Staging a file of rows near the size caps keeps the producer's memory flat.

Each row here is rejected (its metadata values pass Stripe's 500 characters) and keeps its
input cells, close to 1 MiB each, for ``vsbatch failures``: the ledger must write them in
round trips bounded in bytes, not only in rows.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import redis

from tests.conftest import TEST_API_KEY
from vsbatch.bootstrap import bootstrap
from vsbatch.config import Settings
from vsbatch.intake.csv_writers import write_failures
from vsbatch.intake.stage import submit_csv
from vsbatch.model.row import Outcome

MIB = 1024 * 1024


def _wide_file(path: Path, rows: int = 60, columns: int = 100) -> Path:
    """``rows`` rows of ``columns`` metadata cells of 9,900 characters (about 1 MiB a row)."""
    with path.open("w") as out:
        out.write("id," + ",".join(f"metadata.k{n}" for n in range(columns)) + "\n")
        for row in range(rows):
            out.write(f"vs_{row}A" + f",{'v' * 9_900}" * columns + "\n")
    return path


def test_rows_of_1_mib_stage_and_export_in_bounded_memory(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """60 rows of about 1 MiB each are staged, then exported as failures, each step under
    40 MiB of peak memory."""
    path = _wide_file(tmp_path / "wide.csv")
    deps = bootstrap(Settings(_env_file=None, redis_url=redis_url, stripe_api_key=TEST_API_KEY))
    try:
        tracemalloc.start()
        batch = submit_csv(deps, path, lambda *_: None, digest="d")
        staging_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        with (tmp_path / "failures.csv").open("w", newline="") as out:
            count = write_failures(deps.ledger.iter_rows(batch.id), out)
        export_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        deps.close()

    assert (60, 60) == (batch.counts[Outcome.REJECTED], count)
    assert staging_peak < 40 * MIB, f"staging {staging_peak / MIB:.0f} MiB"
    assert export_peak < 40 * MIB, f"export {export_peak / MIB:.0f} MiB"

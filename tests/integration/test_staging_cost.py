"""What a staged file costs Redis per row, counted with ``MEMORY USAGE`` on the real server.

Issue 12 asks at most 250 bytes of Redis per queued row, chunk messages included: the
ledger's share (records, sessions, the FIFO's bookkeeping) and the broker's share are bounded
here separately, for rows like those of the producer benchmark.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import TEST_API_KEY
from vsbatch.bootstrap import Deps, bootstrap
from vsbatch.config import Settings
from vsbatch.intake.stage import submit_csv
from vsbatch.model.row import Outcome
from vsbatch.worker.celery_app import configure
from vsbatch.worker.row_options import RowOptions
from vsbatch.worker.tasks import enqueue_chunk

ROWS = 20_000


def write_rows(path: Path, rows: int) -> None:
    """The producer benchmark's rows: a selfie required and one metadata key, per session."""
    with path.open("w") as out:
        out.write("id,stripe_account,options.document.require_matching_selfie,metadata.bench\n")
        for i in range(rows):
            out.write(f"vs_bench{i:014d},,true,r{i}\n")


@pytest.fixture
def producer(redis_url: str, redis_client: redis.Redis) -> Iterator[Deps]:
    """The producer's dependencies on the flushed test Redis, Celery pointed at it."""
    settings = Settings(_env_file=None, redis_url=redis_url, stripe_api_key=TEST_API_KEY)
    configure(settings)
    built = bootstrap(settings)
    try:
        yield built
    finally:
        built.close()


def redis_bytes(client: redis.Redis) -> int:
    """``MEMORY USAGE`` of every key, summed (all of a key's values: no sampling)."""
    return sum(
        int(client.memory_usage(key, samples=0) or 0) for key in client.scan_iter(count=1000)
    )


class TestStagingCost:
    def test_a_queued_row_costs_the_ledger_under_200_bytes(
        self, producer: Deps, redis_client: redis.Redis, tmp_path: Path
    ) -> None:
        """A staged file's keys (records, sessions, FIFO) hold under 200 bytes per queued
        row (the messages aside)."""
        path = tmp_path / "rows.csv"
        write_rows(path, ROWS)
        batch = submit_csv(producer, path, lambda *_: None)

        per_row = redis_bytes(redis_client) / ROWS

        assert (ROWS, True) == (batch.counts[Outcome.QUEUED], per_row < 200), per_row

    def test_a_chunk_message_costs_under_24_bytes_a_row(
        self, producer: Deps, redis_client: redis.Redis
    ) -> None:
        """A message of 100 rows waits in the broker's queue in under 2,400 bytes."""
        enqueue_chunk("b_0mxblo12xfl35hz", list(range(900_001, 900_101)), RowOptions())

        size = int(redis_client.memory_usage("vsbatch", samples=0) or 0)

        assert (1, True) == (redis_client.llen("vsbatch"), size < 2_400), size

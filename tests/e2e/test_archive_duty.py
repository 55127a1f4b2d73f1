"""Finished batches reach the results store with no second command: a real worker process
archives them from its heartbeat, and one of two workers does the work."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Workers, wait_done
from tests.helpers import metadata_csv
from vsbatch.bootstrap import Deps
from vsbatch.intake.stage import submit_csv
from vsbatch.results.store import ResultsStore
from vsbatch.worker.tasks import enqueue_chunk


def test_workers_archive_a_finished_batch(
    emulator: Any, workers: Workers, producer: Deps, tmp_path: Path
) -> None:
    """Within a few heartbeats of its end, a batch is in the data directory's SQLite store."""
    # Given two workers (archiving on, the default) and a worked batch
    workers.start(concurrency=2)
    workers.start(concurrency=2)
    csv = metadata_csv(tmp_path / "in.csv", emulator.seed(count=6), "metadata.plan", "gold")
    batch = wait_done(producer, submit_csv(producer, csv, enqueue_chunk).id)

    # When the workers beat a few times
    with ResultsStore.open(producer.settings.results_database_url) as store:
        deadline = time.monotonic() + 60
        while not store.complete_batches([batch.id]) and time.monotonic() < deadline:
            time.sleep(0.5)

        # Then the batch is there whole, each row once
        assert batch.id in store.complete_batches([batch.id])
        assert {"succeeded": 6, "skipped": 0, "failed": 0, "rejected": 0} == store.batch_totals(
            batch.id
        )

"""The archiver: real batches, worked against the emulator through real Redis, copied to SQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import text

from tests.results_db import finished_batch
from vsbatch.bootstrap import Deps
from vsbatch.intake.stage import submit_csv
from vsbatch.model.row import BatchState, RowRecord
from vsbatch.model.update import key_of
from vsbatch.results import store as store_module
from vsbatch.results.archiver import ArchiveDuty, Archiver
from vsbatch.results.store import ResultsStore

WEEK = 7 * 86400


def as_archived(records: Iterator[RowRecord]) -> list[RowRecord]:
    """The ledger's rows as the store gives them back: with their Idempotency-Key whole."""
    return [replace(r, idempotency_key=key_of(r)) for r in records]


@pytest.fixture
def store(results_url: str) -> Iterator[ResultsStore]:
    with ResultsStore.open(results_url) as opened:
        yield opened


@pytest.fixture
def archiver(deps: Deps, store: ResultsStore) -> Archiver:
    return Archiver(deps.ledger, store, archived_retention=WEEK)


class TestArchiving:
    def test_a_finished_batch_arrives_whole(
        self, deps: Deps, emulator: Any, tmp_path: Path, archiver: Archiver, store: ResultsStore
    ) -> None:
        """Every row of a done batch is in SQL as the ledger has it, and the batch is complete."""
        batch = finished_batch(deps, emulator, tmp_path)

        done = archiver.archive_finished()

        assert [(batch.id, 14, True)] == [(a.batch_id, a.rows, a.complete) for a in done]
        assert as_archived(deps.ledger.iter_rows(batch.id)) == list(store.iter_rows(batch.id))
        expected = {"succeeded": 12, "failed": 1, "rejected": 1, "skipped": 0}
        assert expected == store.batch_totals(batch.id)

    def test_an_archived_batch_leaves_redis_sooner(
        self, deps: Deps, emulator: Any, tmp_path: Path, archiver: Archiver
    ) -> None:
        """Once archived whole, the batch's keys expire within the archived retention."""
        batch = finished_batch(deps, emulator, tmp_path, n=2)

        archiver.archive_batch(batch.id)

        ttls = [deps.redis.ttl(key) for key in deps.ledger.keys.batch_keys(batch.id)]
        assert all(0 < ttl <= WEEK for ttl in ttls if ttl != -2), ttls

    def test_a_second_pass_reads_nothing_again(
        self, deps: Deps, emulator: Any, tmp_path: Path, archiver: Archiver
    ) -> None:
        """The checkpoint: a batch archived whole is not archived again."""
        finished_batch(deps, emulator, tmp_path, n=2)
        archiver.archive_finished()

        assert [] == archiver.archive_finished()

    def test_an_expired_batch_still_indexed_is_passed_over(
        self, deps: Deps, emulator: Any, tmp_path: Path, archiver: Archiver
    ) -> None:
        """A batch id left in the index after its keys expired is skipped, not an error."""
        gone = finished_batch(deps, emulator, tmp_path, n=1)
        deps.redis.delete(*deps.ledger.keys.batch_keys(gone.id))

        assert [] == archiver.archive_finished()

    def test_an_open_batch_waits_for_its_end(
        self, deps: Deps, emulator: Any, tmp_path: Path, archiver: Archiver, store: ResultsStore
    ) -> None:
        """A pass leaves open batches alone; naming one archives its finished rows so far."""
        (sid,) = emulator.seed(count=1)
        path = tmp_path / "open.csv"
        path.write_text(f"id,metadata.plan\n{sid},gold\nnot-an-id,gold\n", encoding="utf-8")
        batch = submit_csv(deps, path, lambda *_: None)

        passed = archiver.archive_finished()
        named = archiver.archive_batch(batch.id)

        assert ([], 1, False) == (passed, named.rows, named.complete)
        assert BatchState.OPEN is store.get_batch(batch.id).state


class TestCrash:
    def test_a_crash_half_way_then_a_rerun_keeps_every_row_once(
        self,
        deps: Deps,
        emulator: Any,
        tmp_path: Path,
        archiver: Archiver,
        store: ResultsStore,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Archive half, crash, archive again: every row exactly once, the batch complete."""
        # Given a batch whose archiving died after 7 rows, in blocks of 3
        batch = finished_batch(deps, emulator, tmp_path)
        monkeypatch.setattr(store_module, "WRITE_BLOCK", 3)

        def dying() -> Iterator[RowRecord]:
            for index, record in enumerate(deps.ledger.iter_rows(batch.id)):
                if index == 7:
                    raise ConnectionError("archiver killed")
                yield record

        with pytest.raises(ConnectionError):
            store.upsert_rows(batch, dying(), complete=True)
        half = store.count_rows(batch.id)

        # When the archiver runs again
        archiver.archive_finished()

        # Then the rows of whole blocks were kept, and now each row is there once
        with store.engine.connect() as conn:
            twice = conn.execute(
                text(
                    "SELECT batch_id, row_num FROM vsbatch_rows"
                    " GROUP BY batch_id, row_num HAVING COUNT(*) > 1"
                )
            ).all()
        assert (6, [], 14) == (half, twice, store.count_rows(batch.id))
        assert store.archived_batch(batch.id).complete
        assert as_archived(deps.ledger.iter_rows(batch.id)) == list(store.iter_rows(batch.id))


class TestDuty:
    def test_one_worker_archives_at_a_time(
        self, deps: Deps, emulator: Any, tmp_path: Path, results_url: str, store: ResultsStore
    ) -> None:
        """The duty runs only for the holder of the fleet's lock, and releases it after."""
        batch = finished_batch(deps, emulator, tmp_path, n=2)
        settings = deps.settings.model_copy(update={"results_url": results_url})
        key = deps.ledger.keys.archiver
        deps.redis.set(key, "another worker", ex=60)
        duty = ArchiveDuty(deps.ledger, settings)

        duty.poke()
        duty.join(30)
        skipped = store.complete_batches([batch.id])
        deps.redis.delete(key)
        duty.poke()
        duty.join(30)

        assert (set(), {batch.id}) == (skipped, store.complete_batches([batch.id]))
        assert deps.redis.get(key) is None

    def test_an_unreachable_database_is_a_warning(
        self, deps: Deps, emulator: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A results database that cannot be reached logs one warning; the lock is released."""
        finished_batch(deps, emulator, tmp_path, n=1)
        url = "postgresql://u:pw@127.0.0.1:1/db?connect_timeout=1"
        duty = ArchiveDuty(deps.ledger, deps.settings.model_copy(update={"results_url": url}))

        duty.poke()
        duty.join(30)

        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert any("127.0.0.1:1" in w and "pw" not in w for w in warnings), warnings
        assert (
            isinstance(deps.redis, redis.Redis)
            and deps.redis.get(deps.ledger.keys.archiver) is None
        )

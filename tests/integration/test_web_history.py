"""A session's history on the dashboard: rows from the real Redis ledger and from a SQLite
results store, merged (``vsbatch.web.history``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from vsbatch.model.row import NewRow, Outcome
from vsbatch.results.store import ResultsStore
from vsbatch.store.ledger import Ledger
from vsbatch.web.history import SessionHistory

SESSION = "vs_History0000001"


def _batch(ledger: Ledger, name: str, sessions: list[str]) -> str:
    """A batch whose rows (from 2) update ``sessions``, each applied."""
    batch = ledger.create_batch(name=name, kind="csv", source=f"{name}.csv")
    rows = [NewRow(n + 2, s, None, {"metadata": {"k": name}}) for n, s in enumerate(sessions)]
    ledger.add_rows(batch.id, rows)
    ledger.open_batch(batch.id)
    for n in range(len(sessions)):
        ledger.transition(batch.id, n + 2, Outcome.SUCCEEDED)
    return batch.id


def _archive(store: ResultsStore, ledger: Ledger, batch_id: str) -> None:
    store.upsert_rows(ledger.get_batch(batch_id), ledger.iter_rows(batch_id), complete=True)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResultsStore]:
    with ResultsStore.open(f"sqlite:///{tmp_path / 'results.sqlite3'}") as opened:
        yield opened


class TestSessionHistory:
    def test_archived_and_live_rows_merge_oldest_first(
        self, redis_client: redis.Redis, store: ResultsStore
    ) -> None:
        """A batch gone from Redis (archived) and two in Redis (one archived too) give the
        session's three updates, each once, oldest first."""
        # Given a batch only in the store (another ledger's), then two in this ledger
        gone = Ledger(redis_client, prefix="expired")
        old = _batch(gone, "old", [SESSION, "vs_Other000000001"])
        _archive(store, gone, old)
        ledger = Ledger(redis_client)
        middle = _batch(ledger, "middle", [SESSION])
        _archive(store, ledger, middle)
        new = _batch(ledger, "new", ["vs_Other000000001", SESSION])

        # When the session's history is read
        rows = SessionHistory(ledger, store, pii=False).rows(SESSION, 50)

        # Then three updates, oldest first
        assert [(old, 2), (middle, 2), (new, 3)] == [(r.batch_id, r.row) for r in rows]

    def test_without_a_store_redis_only_and_the_page_says_so(
        self, redis_client: redis.Redis
    ) -> None:
        """With no results store the rows come from Redis and the source says 'only'."""
        ledger = Ledger(redis_client)
        batch_id = _batch(ledger, "only", [SESSION])
        history = SessionHistory(ledger, None, pii=False)

        assert ([batch_id], True) == (
            [r.batch_id for r in history.rows(SESSION, 50)],
            "Redis ledger" in history.source and "only" in history.source,
        )

    def test_limit_keeps_the_oldest(self, redis_client: redis.Redis, store: ResultsStore) -> None:
        """Past ``limit`` updates, the oldest are shown."""
        ledger = Ledger(redis_client)
        first = _batch(ledger, "first", [SESSION])
        _batch(ledger, "second", [SESSION])

        assert [first] == [
            r.batch_id for r in SessionHistory(ledger, store, pii=False).rows(SESSION, 1)
        ]

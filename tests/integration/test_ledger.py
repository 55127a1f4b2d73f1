"""The ledger against a real Redis: batches (create, list, open, cancel, discard), their keys'
retention, and the memory a row costs.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from tests.integration.conftest import Clock
from tests.integration.ledger_data import RETENTION, opened, row, staged
from vsbatch.errors import InputError, NotFoundError
from vsbatch.model.row import BatchState, NewRow, Outcome, SkipReason
from vsbatch.store.keys import Keys
from vsbatch.store.ledger import Ledger
from vsbatch.store.locks import SessionLocks
from vsbatch.store.row_lease import RowLease, RowLeases


class TestBatches:
    def test_create_batch_is_staging_and_empty(self, ledger: Ledger, clock: Clock) -> None:
        """A new batch is STAGING, has no rows and records its fields."""
        batch = ledger.create_batch(name="n", kind="csv", source="f.csv", digest="d")

        assert (BatchState.STAGING, 0, "f.csv", "d", clock.now) == (
            batch.state,
            batch.total,
            batch.source,
            batch.digest,
            batch.created_at,
        )

    def test_batch_ids_sort_by_creation(self, ledger: Ledger, clock: Clock) -> None:
        """Batch ids are short and sort in creation order."""
        ids = []
        for _ in range(5):
            ids.append(ledger.create_batch(name="n", kind="csv", source="s").id)
            clock.now += 0.002

        assert (sorted(ids), True) == (ids, all(len(i) <= 20 for i in ids))

    def test_unknown_batch_is_not_found(self, ledger: Ledger) -> None:
        """Reading an unknown batch raises NotFoundError."""
        with pytest.raises(NotFoundError):
            ledger.get_batch("b_nope")

    def test_list_batches_newest_first(self, ledger: Ledger, clock: Clock) -> None:
        """list_batches returns the newest batches first, up to the limit."""
        ids = []
        for _ in range(3):
            ids.append(ledger.create_batch(name="n", kind="csv", source="s").id)
            clock.now += 1

        assert ids[::-1][:2] == [b.id for b in ledger.list_batches(limit=2)]

    def test_open_batch_opens(self, ledger: Ledger) -> None:
        """Opening a staged batch with queued rows makes it OPEN."""
        assert BatchState.OPEN == opened(ledger, [row(2)]).state

    def test_open_batch_of_rejected_rows_is_done(self, ledger: Ledger, clock: Clock) -> None:
        """A batch whose rows are all rejected is DONE as soon as it is opened."""
        bad = NewRow(row=2, session_id="x", account=None, params=None, rejection=("id", "bad"))

        batch = opened(ledger, [bad])

        assert (BatchState.DONE, clock.now) == (batch.state, batch.finished_at)

    def test_cancel(self, ledger: Ledger) -> None:
        """Cancel marks an open batch CANCELED."""
        batch = opened(ledger, [row(2)])

        assert BatchState.CANCELED == ledger.cancel(batch.id).state

    def test_canceled_batch_rows_still_move(self, ledger: Ledger) -> None:
        """Workers record skipped rows of a canceled batch, which then gets finished_at."""
        batch = opened(ledger, [row(2)])
        ledger.cancel(batch.id)

        ledger.transition(batch.id, 2, Outcome.SKIPPED, reason=SkipReason.CANCELED.value)
        after = ledger.get_batch(batch.id)

        assert (BatchState.CANCELED, 1, True) == (
            after.state,
            after.counts[Outcome.SKIPPED],
            after.finished_at is not None,
        )

    def test_cancel_unknown_batch(self, ledger: Ledger) -> None:
        """Canceling an unknown batch raises NotFoundError."""
        with pytest.raises(NotFoundError):
            ledger.cancel("b_nope")

    def test_discard_leaves_no_keys(self, ledger: Ledger, redis_client: redis.Redis) -> None:
        """Discarding a staged batch deletes every key it had and its index entry."""
        batch = staged(ledger, [row(2), row(3)])
        ledger.transition(batch.id, 2, Outcome.RUNNING)

        ledger.discard_batch(batch.id)

        assert ([], []) == (
            redis_client.keys(f"vsbatch:b:{batch.id}*"),
            redis_client.zrange(Keys().batches, 0, -1),
        )

    def test_discard_takes_rows_out_of_pending_sets(
        self, ledger: Ledger, redis_client: redis.Redis
    ) -> None:
        """Discarding a staged batch leaves no per-session pending set behind."""
        batch = staged(ledger, [row(2), row(3), row(4, account="acct_1")])

        ledger.discard_batch(batch.id)

        assert [] == redis_client.keys("vsbatch:pending:*")

    def test_discard_refuses_open_batch(self, ledger: Ledger) -> None:
        """An open batch cannot be discarded: its rows may be enqueued."""
        batch = opened(ledger, [row(2)])

        with pytest.raises(InputError):
            ledger.discard_batch(batch.id)

    def test_every_key_has_a_ttl(self, ledger: Ledger, redis_client: redis.Redis) -> None:
        """Every key a batch writes expires within the retention time (seq excepted), and a
        done batch keeps no sessions hash."""
        batch = opened(ledger, [row(2)])
        ledger.transition(batch.id, 2, Outcome.RETRYING)  # an event, so the stream exists
        lease = RowLeases(ledger, SessionLocks(redis_client)).claim(batch.id, 2)
        assert isinstance(lease, RowLease)
        lease.finish(Outcome.SUCCEEDED, applied=True)

        keys = Keys()
        ttls = {
            k.decode(): redis_client.ttl(k) for k in redis_client.keys("*") if k != b"vsbatch:seq"
        }

        # The sessions hash (duplicates while rows are added) goes once the batch is done.
        written = {*keys.batch_keys(batch.id)} - {keys.sessions(batch.id)}
        assert ({*written, keys.batches}, True) == (
            set(ttls),
            all(0 < t <= RETENTION for t in ttls.values()),
        )

    def test_list_batches_leaves_out_expired(
        self, ledger: Ledger, redis_client: redis.Redis
    ) -> None:
        """A batch whose keys expired is not listed."""
        gone = ledger.create_batch(name="n", kind="csv", source="s")
        kept = ledger.create_batch(name="n", kind="csv", source="s")
        redis_client.delete(Keys().batch(gone.id))

        assert [kept.id] == [b.id for b in ledger.list_batches()]


def bytes_per_row(client: redis.Redis, batch_id: str, rows: int) -> dict[str, Any]:
    """Test-side measurement: MEMORY USAGE of the row and session hashes, per row."""
    keys = Keys()
    usage = sum(
        int(client.memory_usage(k, samples=0) or 0)
        for k in (keys.rows(batch_id), keys.sessions(batch_id))
    )
    return {"per_row": usage / rows}


class TestMemory:
    def test_row_memory_is_small(self, ledger: Ledger, redis_client: redis.Redis) -> None:
        """A realistic row costs under 400 bytes of Redis memory (rows + sessions hashes)."""
        batch = staged(ledger, [row(n) for n in range(2, 20_002)])

        measured = bytes_per_row(redis_client, batch.id, 20_000)

        assert measured["per_row"] < 400, measured

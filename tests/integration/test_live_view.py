"""What the live view reads from the real Redis: the open batches, a bounded sample of recent
failure reasons, the workers alive and each account's limit (``ops.live_view.LiveReader``)."""

from __future__ import annotations

import redis

from vsbatch.model.row import NewRow, Outcome
from vsbatch.ops.live_view import AccountLimit, LiveReader
from vsbatch.store.ledger import Ledger
from vsbatch.store.liveness import Liveness
from vsbatch.store.rate_limit import RedisRateLimiter

PARAMS = {"metadata": {"k": "v"}}


def open_batch(ledger: Ledger, rows: int, *, name: str = "b", account: str | None = None) -> str:
    """An open batch of ``rows`` queued rows (rows 2..rows+1), for ``account``."""
    batch = ledger.create_batch(name=name, kind="csv", source="x.csv", account=account)
    ledger.add_rows(
        batch.id,
        [NewRow(n, f"vs_live_{name}_{n}", account, PARAMS) for n in range(2, rows + 2)],
    )
    return ledger.open_batch(batch.id).id


class TestLiveReader:
    def test_shows_open_batches_and_a_finished_one_once_more(
        self, redis_client: redis.Redis
    ) -> None:
        """A batch that finishes is shown once, done, then left out; a done one never."""
        # Given a batch already done and an open one
        ledger = Ledger(redis_client)
        finished = open_batch(ledger, 1, name="old")
        ledger.transition(finished, 2, Outcome.SUCCEEDED)
        running = open_batch(ledger, 1, name="new")
        reader = LiveReader(ledger)

        # When the open one finishes between three snapshots
        first = reader.snapshot()
        ledger.transition(running, 2, Outcome.SUCCEEDED)
        second = reader.snapshot()
        third = reader.snapshot()

        # Then
        assert ([running], [(running, "done")], []) == (
            [b.id for b in first.batches],
            [(b.id, b.state.value) for b in second.batches],
            [b.id for b in third.batches],
        )

    def test_counts_the_reasons_of_the_newest_failed_rows(self, redis_client: redis.Redis) -> None:
        """Reasons come from the newest failures only, at most ``rows_sample`` rows."""
        # Given an open batch: 3 rows failed (rate_limit), then 2 (resource_missing), 1 skipped
        ledger = Ledger(redis_client)
        bid = open_batch(ledger, 7)  # row 8 stays queued: the batch stays open
        for row in (2, 3, 4):
            ledger.transition(bid, row, Outcome.FAILED, error_code="rate_limit")
        for row in (5, 6):
            ledger.transition(bid, row, Outcome.FAILED, error_code="resource_missing")
        ledger.transition(bid, 7, Outcome.SKIPPED, reason="unchanged")

        # When the sample holds the 3 newest failed rows
        snapshot = LiveReader(ledger, rows_sample=3).snapshot()

        # Then
        assert (("resource_missing", 2), ("rate_limit", 1)) == snapshot.reasons

    def test_counts_live_workers_and_each_accounts_limit(self, redis_client: redis.Redis) -> None:
        """One worker beating, and the limiter's rate after a 429 against its ceiling."""
        # Given a live worker and an account whose rate was cut by a 429
        ledger = Ledger(redis_client)
        open_batch(ledger, 1, account="acct_1LiveView")
        Liveness(redis_client, ledger.keys, "node-1").beat()
        limiter = RedisRateLimiter(redis_client, rate=20.0)
        limiter.reserve_slot("acct_1LiveView")
        limiter.penalize("acct_1LiveView")

        # When
        snapshot = LiveReader(ledger, limiter=limiter).snapshot()

        # Then
        limit = snapshot.limits["acct_1LiveView"]
        assert (1, 20.0, True) == (snapshot.workers, limit.configured, limit.current < 20.0)
        assert isinstance(limit, AccountLimit)

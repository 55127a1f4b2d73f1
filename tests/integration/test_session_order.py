"""Per-session FIFO: the ledger's pending sets and ``process_row`` waiting behind older rows."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from vsbatch.bootstrap import Deps
from vsbatch.model.row import NewRow, Outcome
from vsbatch.store.keys import Keys
from vsbatch.store.ledger import Ledger
from vsbatch.worker.process_row import process_row
from vsbatch.worker.row_options import ORDER_DELAY, Later, RowOptions

SID = "vs_1" + "0" * 23
SELFIE = {"options": {"document": {"require_matching_selfie": True}}}


@pytest.fixture
def ledger(redis_client: redis.Redis) -> Ledger:
    return Ledger(redis_client, retention_seconds=3600)


def batch_for(
    ledger: Ledger,
    session_id: str = SID,
    *,
    account: str | None = None,
    open_it: bool = True,
    params: dict[str, Any] = SELFIE,
    indexed: bool = False,
) -> str:
    """A batch with one queued row (row 1) for the session; opened unless told otherwise."""
    batch = ledger.create_batch(name="t", kind="app", source="test", indexed=indexed)
    ledger.add_rows(
        batch.id, [NewRow(1, session_id, account, params, idempotency_key=f"k-{batch.id}")]
    )
    if open_it:
        ledger.open_batch(batch.id)
    return batch.id


class TestPendingSets:
    def test_newer_row_waits_for_older(self, ledger: Ledger) -> None:
        """A row is blocked by the session's older queued row, and the older one is not."""
        old, new = batch_for(ledger), batch_for(ledger)

        assert (None, Outcome.QUEUED) == (
            ledger.older_pending(ledger.get_row(old, 1)),
            ledger.older_pending(ledger.get_row(new, 1)),
        )

    def test_terminal_older_row_releases(self, ledger: Ledger) -> None:
        """Once the older row is terminal the newer row may go, and the older leaves the set."""
        old, new = batch_for(ledger), batch_for(ledger)

        ledger.transition(old, 1, Outcome.FAILED)

        assert (None, 1) == (
            ledger.older_pending(ledger.get_row(new, 1)),
            ledger._r.zcard(Keys().pending(None, SID)),
        )

    def test_retrying_blocker_is_reported(self, ledger: Ledger) -> None:
        """A parked older row blocks as RETRYING."""
        old, new = batch_for(ledger), batch_for(ledger)
        ledger.transition(old, 1, Outcome.RETRYING)

        assert Outcome.RETRYING == ledger.older_pending(ledger.get_row(new, 1))

    def test_other_sessions_and_accounts_do_not_block(self, ledger: Ledger) -> None:
        """Order is per (account, session): other sessions and accounts never wait."""
        batch_for(ledger)
        other = batch_for(ledger, "vs_2" + "0" * 23)
        connected = batch_for(ledger, account="acct_1")

        assert (None, None) == (
            ledger.older_pending(ledger.get_row(other, 1)),
            ledger.older_pending(ledger.get_row(connected, 1)),
        )

    def test_staging_row_is_passed_over(self, ledger: Ledger) -> None:
        """A row in a batch that was never opened does not block newer updates."""
        batch_for(ledger, open_it=False)
        new = batch_for(ledger)

        assert None is ledger.older_pending(ledger.get_row(new, 1))

    def test_discarded_row_is_removed(self, ledger: Ledger) -> None:
        """A discarded batch's row is dropped from the pending set on the next check."""
        staged = batch_for(ledger, open_it=False)
        new = batch_for(ledger)
        ledger.discard_batch(staged)

        ledger.older_pending(ledger.get_row(new, 1))

        assert [new.encode() + b":1"] == ledger._r.zrange(Keys().pending(None, SID), 0, -1)

    def test_rejected_rows_never_join(self, ledger: Ledger) -> None:
        """Rejected rows are not pending: they never block anything."""
        batch = ledger.create_batch(name="t", kind="csv", source="test")
        ledger.add_rows(batch.id, [NewRow(2, SID, None, None, rejection=("id", "bad"))])

        assert 0 == ledger._r.exists(Keys().pending(None, SID))


class TestIndexedBatches:
    """A file's batch keeps its rows out of the pending sets: its sessions hash finds them."""

    def test_rows_join_no_pending_set(self, ledger: Ledger) -> None:
        """An indexed batch's queued row leaves no per-session key; the batch is indexed."""
        batch = batch_for(ledger, indexed=True)

        assert (0, {batch.encode()}) == (
            ledger._r.exists(Keys().pending(None, SID)),
            ledger._r.smembers(Keys().indexed),
        )

    @pytest.mark.parametrize(("old_indexed", "new_indexed"), [(True, False), (True, True)])
    def test_newer_row_waits_for_older_indexed_row(
        self, ledger: Ledger, old_indexed: bool, new_indexed: bool
    ) -> None:
        """A newer row of the session waits while an indexed batch's older row is queued."""
        old = batch_for(ledger, indexed=old_indexed)
        new = batch_for(ledger, indexed=new_indexed)

        assert (None, Outcome.QUEUED) == (
            ledger.older_pending(ledger.get_row(old, 1)),
            ledger.older_pending(ledger.get_row(new, 1)),
        )

    def test_older_pending_set_row_blocks_an_indexed_row(self, ledger: Ledger) -> None:
        """An application's older row (in a pending set) blocks a newer file row."""
        batch_for(ledger)
        new = batch_for(ledger, indexed=True)

        assert Outcome.QUEUED == ledger.older_pending(ledger.get_row(new, 1))

    def test_finished_indexed_batch_releases_and_leaves(self, ledger: Ledger) -> None:
        """Once its row is terminal the newer row may go, and the finished batch leaves the
        set of indexed batches with its sessions hash."""
        old, new = batch_for(ledger, indexed=True), batch_for(ledger, indexed=True)

        ledger.transition(old, 1, Outcome.FAILED)

        assert (None, {new.encode()}, 0) == (
            ledger.older_pending(ledger.get_row(new, 1)),
            ledger._r.smembers(Keys().indexed),
            ledger._r.exists(Keys().sessions(old)),
        )

    def test_staging_indexed_row_is_passed_over(self, ledger: Ledger) -> None:
        """An indexed batch that was never opened does not block newer updates."""
        batch_for(ledger, open_it=False, indexed=True)
        new = batch_for(ledger)

        assert None is ledger.older_pending(ledger.get_row(new, 1))

    def test_gone_indexed_batches_leave_the_set(self, ledger: Ledger) -> None:
        """A discarded indexed batch leaves the set; one whose keys expired is dropped from
        it on the next check."""
        discarded = batch_for(ledger, open_it=False, indexed=True)
        expired = batch_for(ledger, indexed=True)
        new = batch_for(ledger)
        ledger.discard_batch(discarded)
        ledger._r.delete(*Keys().batch_keys(expired))

        ledger.older_pending(ledger.get_row(new, 1))

        assert set() == ledger._r.smembers(Keys().indexed)


class TestProcessingOrder:
    @pytest.mark.parametrize("indexed", [False, True])
    def test_newer_row_is_sent_only_after_older(
        self, deps: Deps, emulator: Any, indexed: bool
    ) -> None:
        """Run newest first: the newer row waits (Later); after the older applies, it applies
        (rows in pending sets, or in indexed batches)."""
        (sid,) = emulator.seed(count=1)
        old = batch_for(deps.ledger, sid, params={"metadata": {"a": "1"}}, indexed=indexed)
        new = batch_for(deps.ledger, sid, params={"metadata": {"b": "2"}}, indexed=indexed)

        first = process_row(deps, new, 1, options=RowOptions())
        older = process_row(deps, old, 1, options=RowOptions())
        newer = process_row(deps, new, 1, options=RowOptions())

        assert (Later(ORDER_DELAY), Outcome.SUCCEEDED, Outcome.SUCCEEDED) == (first, older, newer)
        assert {"a": "1", "b": "2"} == deps.stripe().retrieve(sid).metadata

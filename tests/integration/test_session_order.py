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
) -> str:
    """A batch with one queued row (row 1) for the session; opened unless told otherwise."""
    batch = ledger.create_batch(name="t", kind="app", source="test")
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


class TestProcessingOrder:
    def test_newer_row_is_sent_only_after_older(self, deps: Deps, emulator: Any) -> None:
        """Run newest first: the newer row waits (Later); after the older applies, it applies."""
        (sid,) = emulator.seed(count=1)
        old = batch_for(deps.ledger, sid, params={"metadata": {"a": "1"}})
        new = batch_for(deps.ledger, sid, params={"metadata": {"b": "2"}})

        first = process_row(deps, new, 1, options=RowOptions())
        older = process_row(deps, old, 1, options=RowOptions())
        newer = process_row(deps, new, 1, options=RowOptions())

        assert (Later(ORDER_DELAY), Outcome.SUCCEEDED, Outcome.SUCCEEDED) == (first, older, newer)
        assert {"a": "1", "b": "2"} == deps.stripe().retrieve(sid).metadata

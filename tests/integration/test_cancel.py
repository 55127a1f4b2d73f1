"""Canceling a batch: rows never sent end skipped at once; rows that were or may have been sent
end in their real outcome, resolved under their session's lock.

The dead worker is played by a lock whose owner has no heartbeat and a row left ``running``;
its request, when it "reached Stripe", was really sent to the emulator under the row's key.
"""

from __future__ import annotations

from typing import Any

from tests.integration.test_resume import Enqueued
from vsbatch.bootstrap import Deps
from vsbatch.intake.stage import resume, sweep_stalled
from vsbatch.model.row import NewRow, Outcome
from vsbatch.model.update import idempotency_key, parse_update
from vsbatch.store.locks import SessionLocks
from vsbatch.worker.process_row import process_chunk, process_row
from vsbatch.worker.row_options import BUSY_DELAY, Later, RowOptions

UPDATE = {"metadata": {"tier": "gold"}}
DEAD = "host:9:dead"  # a worker process whose heartbeat is gone (no ``alive:`` key)
LIVE = "host:8:live"


def no_sleep(_seconds: float) -> None:
    """Retries in these tests never really wait."""


def submit(deps: Deps, session_ids: list[str]) -> str:
    """An open batch with one queued row per session (rows 2, 3, ...); returns its id."""
    batch = deps.ledger.create_batch(name="t", kind="csv", source="test")
    update = parse_update(UPDATE)
    rows = [
        NewRow(n, sid, None, UPDATE, idempotency_key=idempotency_key(f"{batch.id}:{n}", update))
        for n, sid in enumerate(session_ids, start=2)
    ]
    deps.ledger.add_rows(batch.id, rows)
    deps.ledger.open_batch(batch.id)
    return batch.id


def start_row(deps: Deps, batch_id: str, row: int, owner: str, *, sent: bool) -> None:
    """Leave the row as a worker named ``owner`` does mid-request: lock held, row running,
    and (``sent``) its request executed by Stripe under the row's key."""
    record = deps.ledger.get_row(batch_id, row)
    locks = SessionLocks(deps.redis)
    locks.owner = owner
    assert locks.acquire(None, record.session_id) is not None
    assert deps.ledger.transition(batch_id, row, Outcome.RUNNING)
    if sent:
        form = parse_update(UPDATE).to_form()
        key = record.idempotency_key or ""
        deps.stripe().update(record.session_id, form, idempotency_key=key)


class TestCancelCommand:
    def test_queued_rows_end_skipped_at_once(self, deps: Deps, emulator: Any) -> None:
        """Cancel ends the rows never sent as skipped (batch_canceled) before any worker runs."""
        sids = list(emulator.seed(count=3))
        bid = submit(deps, sids)

        batch = deps.ledger.cancel(bid)

        reasons = [(r.outcome, r.reason) for r in deps.ledger.iter_rows(bid)]
        assert [(Outcome.SKIPPED, "batch_canceled")] * 3 == reasons
        assert (3, 3) == (batch.terminal, batch.counts[Outcome.SKIPPED])
        assert batch.finished_at is not None

    def test_running_row_is_left_to_its_worker(self, deps: Deps, emulator: Any) -> None:
        """Cancel leaves a row that a worker is sending as it is; only queued rows end."""
        sids = list(emulator.seed(count=2))
        bid = submit(deps, sids)
        start_row(deps, bid, 2, LIVE, sent=False)

        deps.ledger.cancel(bid)

        outcomes = [r.outcome for r in deps.ledger.iter_rows(bid)]
        assert [Outcome.RUNNING, Outcome.SKIPPED] == outcomes


class TestRunningRowOfCanceledBatch:
    def test_row_whose_request_executed_ends_succeeded(self, deps: Deps, emulator: Any) -> None:
        """A running row whose dead worker's request executed ends succeeded, not skipped, and
        the session is not updated a second time (Stripe replays the row's key)."""
        # Given a row whose worker died after Stripe executed its request
        (sid,) = emulator.seed(count=1)
        bid = submit(deps, [sid])
        start_row(deps, bid, 2, DEAD, sent=True)

        # When the batch is canceled and a live worker processes the chunk again
        deps.ledger.cancel(bid)
        result = process_chunk(deps, bid, [2], options=RowOptions(), budget=60, sleep=no_sleep)

        # Then the row ends in its real outcome
        record = deps.ledger.get_row(bid, 2)
        assert ([2], Outcome.SUCCEEDED, None) == (result.finished, record.outcome, record.reason)
        assert {sid: 1} == emulator.stats()["applied"]
        assert 1 == deps.ledger.get_batch(bid).counts[Outcome.SUCCEEDED]

    def test_read_first_does_not_turn_an_executed_row_into_a_skip(
        self, deps: Deps, emulator: Any
    ) -> None:
        """With read-first, a running row whose request executed is not skipped as unchanged:
        it is resolved under its key and ends succeeded."""
        (sid,) = emulator.seed(count=1)
        bid = submit(deps, [sid])
        start_row(deps, bid, 2, DEAD, sent=True)
        deps.ledger.cancel(bid)

        outcome = process_row(deps, bid, 2, options=RowOptions(read_first=True), sleep=no_sleep)

        assert (Outcome.SUCCEEDED, None) == (outcome, deps.ledger.get_row(bid, 2).reason)
        assert {sid: 1} == emulator.stats()["applied"]

    def test_row_held_by_a_live_worker_is_not_skipped(self, deps: Deps, emulator: Any) -> None:
        """A running row whose worker is alive and holds the lock is left to that worker."""
        (sid,) = emulator.seed(count=1)
        bid = submit(deps, [sid])
        start_row(deps, bid, 2, LIVE, sent=True)
        deps.redis.set(deps.ledger.keys.alive(LIVE), "1")
        deps.ledger.cancel(bid)

        outcome = process_row(deps, bid, 2, options=RowOptions(lock_wait=0), sleep=no_sleep)

        assert (Later(BUSY_DELAY), Outcome.RUNNING) == (
            outcome,
            deps.ledger.get_row(bid, 2).outcome,
        )

    def test_queued_row_is_skipped_without_a_request(self, deps: Deps, emulator: Any) -> None:
        """A worker meeting a queued row of a canceled batch skips it and sends nothing."""
        (sid,) = emulator.seed(count=1)
        bid = submit(deps, [sid])
        deps.ledger.cancel(bid)

        outcome = process_row(deps, bid, 2, sleep=no_sleep)

        assert (Outcome.SKIPPED, "batch_canceled") == (outcome, deps.ledger.get_row(bid, 2).reason)
        assert {} == emulator.stats()["requests"]

    def test_row_retrying_before_any_send_is_skipped(self, deps: Deps, emulator: Any) -> None:
        """A row parked after its read-first failed (retrying, no attempt) was never sent: in a
        canceled batch it ends skipped (batch_canceled) without a request."""
        (sid,) = emulator.seed(count=1)
        bid = submit(deps, [sid])
        assert deps.ledger.transition(bid, 2, Outcome.RETRYING, error_type="api_error")
        deps.ledger.cancel(bid)

        outcome = process_row(deps, bid, 2, sleep=no_sleep)

        assert (Outcome.SKIPPED, "batch_canceled") == (outcome, deps.ledger.get_row(bid, 2).reason)
        assert {} == emulator.stats()["requests"]


class TestLostMessages:
    def test_resume_enqueues_a_canceled_batch_s_running_row(
        self, deps: Deps, emulator: Any
    ) -> None:
        """``resume`` of a canceled batch sends its in-flight rows again (to be resolved)."""
        sids = list(emulator.seed(count=2))
        bid = submit(deps, sids)
        start_row(deps, bid, 3, DEAD, sent=True)
        deps.ledger.cancel(bid)
        enqueued = Enqueued()

        _, count = resume(deps, bid, enqueued)

        assert (1, [3]) == (count, enqueued.rows)

    def test_sweep_picks_up_a_stalled_canceled_batch(self, deps: Deps, emulator: Any) -> None:
        """A canceled batch whose in-flight row lost its message is enqueued again by the
        sweep of stalled batches, like an open one."""
        (sid,) = emulator.seed(count=1)
        bid = submit(deps, [sid])
        start_row(deps, bid, 2, DEAD, sent=True)
        deps.ledger.cancel(bid)
        enqueued = Enqueued()

        swept = sweep_stalled(deps, enqueued, stall=0.0)

        assert ([bid], [2]) == (swept, enqueued.rows)


class TestGuardedTransition:
    def test_skip_only_from_queued_leaves_a_running_row(self, deps: Deps, emulator: Any) -> None:
        """A transition guarded by ``only_from=QUEUED`` writes nothing once a worker began the
        row, so a stale read of a queued row cannot skip a row being sent."""
        (sid,) = emulator.seed(count=1)
        bid = submit(deps, [sid])
        assert deps.ledger.transition(bid, 2, Outcome.RUNNING)

        moved = deps.ledger.transition(
            bid, 2, Outcome.SKIPPED, only_from=Outcome.QUEUED, reason="batch_canceled"
        )

        assert (False, Outcome.RUNNING) == (moved, deps.ledger.get_row(bid, 2).outcome)

"""The ledger against a real Redis: atomic transitions of rows, the applied marker that ends a
late older update superseded, and a success clearing an earlier error.
"""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
import redis

from tests.integration.conftest import Clock
from tests.integration.ledger_data import RETENTION, opened, row, sid
from vsbatch.errors import NotFoundError
from vsbatch.model.row import BatchInfo, BatchState, Outcome, SkipReason
from vsbatch.store.keys import Keys
from vsbatch.store.ledger import Ledger
from vsbatch.store.locks import SessionLocks
from vsbatch.store.row_lease import Ended, RowLease, RowLeases


class TestTransitions:
    def test_transition_moves_counters(self, ledger: Ledger) -> None:
        """A real transition moves one row from the old bucket to the new one."""
        batch = opened(ledger, [row(2), row(3)])

        ledger.transition(batch.id, 2, Outcome.RUNNING)

        counts = ledger.get_batch(batch.id).counts
        assert (1, 1) == (counts[Outcome.QUEUED], counts[Outcome.RUNNING])

    def test_transition_sets_fields_and_updated_at(self, ledger: Ledger, clock: Clock) -> None:
        """Fields given to transition land in the record, with updated_at from the clock."""
        batch = opened(ledger, [row(2)])
        clock.now += 5

        ledger.transition(batch.id, 2, Outcome.FAILED, retryable=False, error_code="x", attempts=3)

        record = ledger.get_row(batch.id, 2)
        assert (False, "x", 3, clock.now) == (
            record.retryable,
            record.error_code,
            record.attempts,
            record.updated_at,
        )

    def test_default_field_value_removes_it(self, ledger: Ledger) -> None:
        """Setting a field back to None removes it from the record."""
        batch = opened(ledger, [row(2)])
        ledger.transition(batch.id, 2, Outcome.RETRYING, error_code="lock_timeout")

        ledger.transition(batch.id, 2, Outcome.RUNNING, error_code=None)

        assert ledger.get_row(batch.id, 2).error_code is None

    def test_extra_round_trips(self, ledger: Ledger) -> None:
        """The extra dict, lists and nesting included, comes back as it went in."""
        batch = opened(ledger, [row(2)])
        extra = {"b": [], "a": {"z": 1, "y": [1, 2]}}

        ledger.transition(batch.id, 2, Outcome.RUNNING, extra=extra)

        assert extra == ledger.get_row(batch.id, 2).extra

    def test_terminal_row_never_moves(self, ledger: Ledger) -> None:
        """A terminal row refuses every later transition and keeps its record."""
        batch = opened(ledger, [row(2)])
        ledger.transition(batch.id, 2, Outcome.SUCCEEDED, session_status="requires_input")

        moved = ledger.transition(batch.id, 2, Outcome.FAILED, error_code="late")

        record = ledger.get_row(batch.id, 2)
        assert (False, Outcome.SUCCEEDED, None) == (moved, record.outcome, record.error_code)

    def test_same_transition_twice_moves_counters_once(self, ledger: Ledger) -> None:
        """Repeating a non-terminal transition updates fields but moves counters once."""
        batch = opened(ledger, [row(2), row(3)])

        first = ledger.transition(batch.id, 2, Outcome.RETRYING, attempts=1)
        second = ledger.transition(batch.id, 2, Outcome.RETRYING, attempts=2)

        counts = ledger.get_batch(batch.id).counts
        assert (True, True, 1, 1, 2) == (
            first,
            second,
            counts[Outcome.RETRYING],
            counts[Outcome.QUEUED],
            ledger.get_row(batch.id, 2).attempts,
        )

    def test_racing_threads_finish_a_row_once(self, redis_url: str, ledger: Ledger) -> None:
        """Twenty threads racing to finish one row: exactly one wins, counters move once."""
        batch = opened(ledger, [row(2), row(3)])
        start = threading.Barrier(20)
        results: list[bool] = []

        def finish() -> None:
            own = Ledger(redis.Redis.from_url(redis_url), retention_seconds=RETENTION)
            start.wait()
            results.append(own.transition(batch.id, 2, Outcome.SUCCEEDED))

        threads = [threading.Thread(target=finish) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        counts = ledger.get_batch(batch.id).counts
        assert (1, 1, 1) == (sum(results), counts[Outcome.SUCCEEDED], counts[Outcome.QUEUED])

    def test_unknown_row_transition_is_not_found(self, ledger: Ledger) -> None:
        """Transitioning a row that does not exist raises NotFoundError."""
        batch = opened(ledger, [row(2)])

        with pytest.raises(NotFoundError):
            ledger.transition(batch.id, 3, Outcome.RUNNING)

    def test_unknown_field_refused(self, ledger: Ledger) -> None:
        """transition refuses fields that are not patchable record attributes."""
        batch = opened(ledger, [row(2)])

        with pytest.raises(TypeError):
            ledger.transition(batch.id, 2, Outcome.RUNNING, seq=7)

    def test_done_exactly_when_last_row_terminal(self, ledger: Ledger, clock: Clock) -> None:
        """The batch turns DONE with the last terminal row, not before."""
        batch = opened(ledger, [row(2), row(3)])
        ledger.transition(batch.id, 2, Outcome.SUCCEEDED)
        before = ledger.get_batch(batch.id).state
        clock.now += 1

        ledger.transition(batch.id, 3, Outcome.SKIPPED, reason=SkipReason.UNCHANGED.value)

        after = ledger.get_batch(batch.id)
        assert (BatchState.OPEN, BatchState.DONE, clock.now, 2) == (
            before,
            after.state,
            after.finished_at,
            after.terminal,
        )

    def test_transitions_are_recorded_as_events(
        self, ledger: Ledger, redis_client: redis.Redis
    ) -> None:
        """Each applied transition appends one event with row, from and to."""
        batch = opened(ledger, [row(2)])
        ledger.transition(batch.id, 2, Outcome.RUNNING)
        ledger.transition(batch.id, 2, Outcome.SUCCEEDED)
        ledger.transition(batch.id, 2, Outcome.FAILED)

        events = redis_client.xrange(Keys().events(batch.id))

        assert [(b"queued", b"running"), (b"running", b"succeeded")] == [
            (e[b"from"], e[b"to"]) for _, e in events
        ]


class TestAppliedMarker:
    """The applied marker makes an older update of a session that comes late end superseded.
    Only two such updates exist: a retry of a failed row (it keeps the failed row's place in
    line) and a row of a batch that was still staging (the order gate passes it over). A
    session with neither in sight gets no marker: it would be a key per session."""

    def test_a_higher_mark_already_there_stays(
        self, ledger: Ledger, redis_client: redis.Redis
    ) -> None:
        """A row that ends applied where a mark is already there keeps the maximum."""
        batch = opened(ledger, [row(2)])
        lease = RowLeases(ledger, SessionLocks(redis_client)).claim(batch.id, 2)
        assert isinstance(lease, RowLease)
        redis_client.set(Keys().applied(None, sid(2)), 10**9)

        lease.finish(Outcome.SUCCEEDED, applied=True)

        assert 10**9 == ledger.applied_seq(None, sid(2))

    def test_a_session_with_no_older_update_in_sight_gets_no_marker(
        self, ledger: Ledger, redis_client: redis.Redis
    ) -> None:
        """A plain row applied leaves no key for its session (the bytes of a finished row)."""
        batch = opened(ledger, [row(2)])
        lease = RowLeases(ledger, SessionLocks(redis_client)).claim(batch.id, 2)
        assert isinstance(lease, RowLease)

        lease.finish(Outcome.SUCCEEDED, applied=True)

        assert (0, []) == (
            redis_client.exists(Keys().applied(None, sid(2))),
            redis_client.keys("vsbatch:applied:*"),
        )

    @pytest.mark.parametrize("indexed", [True, False], ids=["file", "application"])
    def test_a_row_of_a_batch_still_staging_ends_superseded(
        self, ledger: Ledger, redis_client: redis.Redis, indexed: bool
    ) -> None:
        """An older row of a batch still staging is passed over; the newer one is applied and
        marks the session, so the older one, once its batch opens, ends superseded."""
        leases = RowLeases(ledger, SessionLocks(redis_client))
        early = ledger.create_batch(name="early", kind="csv", source="a.csv", indexed=indexed)
        ledger.add_rows(early.id, [row(2, session=7)])
        late = ledger.create_batch(name="late", kind="csv", source="b.csv", indexed=indexed)
        ledger.add_rows(late.id, [row(3, session=7)])
        ledger.open_batch(late.id)
        newer = leases.claim(late.id, 3)
        assert isinstance(newer, RowLease)
        newer.finish(Outcome.SUCCEEDED, applied=True)
        ledger.open_batch(early.id)

        older = leases.claim(early.id, 2)

        assert isinstance(older, Ended) and older.record is not None
        assert (Outcome.SKIPPED, SkipReason.SUPERSEDED) == (older.outcome, older.record.reason)

    def test_a_retry_of_a_failure_older_than_an_applied_update_ends_superseded(
        self, ledger: Ledger, redis_client: redis.Redis
    ) -> None:
        """A row fails, a newer update of its session is applied, then the failure is retried
        (keeping its place in line): the retry ends superseded instead of overwriting."""
        leases = RowLeases(ledger, SessionLocks(redis_client))
        first = opened(ledger, [row(2, session=7)])
        failing = leases.claim(first.id, 2)
        assert isinstance(failing, RowLease)
        failing.finish(Outcome.FAILED, retryable=True, reason="api_error")
        second = opened(ledger, [row(3, session=7)])
        newer = leases.claim(second.id, 3)
        assert isinstance(newer, RowLease)
        newer.finish(Outcome.SUCCEEDED, applied=True)
        retry = ledger.create_batch(name="retry", kind="retry", source="t", parent_id=first.id)
        again = row(2, session=7)
        ledger.add_rows(retry.id, [replace(again, extra={"parent_seq": failing.record.seq})])
        ledger.open_batch(retry.id)

        retried = leases.claim(retry.id, 2)

        assert isinstance(retried, Ended) and retried.record is not None
        assert (Outcome.SKIPPED, SkipReason.SUPERSEDED) == (retried.outcome, retried.record.reason)
        # Both markers expire: the applied one with the retention, the failed one at twice it
        # (its batch's keys live on past the failure, and a retry may come until they go).
        applied, failed = Keys().applied(None, sid(7)), Keys().failed(None, sid(7))
        assert (True, True) == (
            0 < redis_client.ttl(applied) <= RETENTION,
            RETENTION < redis_client.ttl(failed) <= 2 * RETENTION,
        )

    def test_a_retry_applied_marks_the_place_of_the_update_it_retries(
        self, ledger: Ledger, redis_client: redis.Redis
    ) -> None:
        """Two rows of a session fail, older A then newer B; A's retry is applied, then B's:
        B's retry is the newer update and is applied too (red team: A's retry marked the
        session at its own new seq, and B's retry ended superseded)."""
        leases = RowLeases(ledger, SessionLocks(redis_client))
        older, a = failed_row(ledger, leases, 2)
        newer, b = failed_row(ledger, leases, 3)
        retry_a = leases.claim(retried(ledger, older, a).id, 2)
        assert isinstance(retry_a, RowLease)
        retry_a.finish(Outcome.SUCCEEDED, applied=True)

        retry_b = leases.claim(retried(ledger, newer, b).id, 3)

        assert isinstance(retry_b, RowLease)

    def test_a_retry_applied_does_not_supersede_a_newer_row_of_a_staging_batch(
        self, ledger: Ledger, redis_client: redis.Redis
    ) -> None:
        """A row fails; a newer file with its session is still staging when the failure's
        retry is applied; once the file opens, its row is the newer update and is applied."""
        leases = RowLeases(ledger, SessionLocks(redis_client))
        older, failing = failed_row(ledger, leases, 2)
        staging = ledger.create_batch(name="c", kind="csv", source="c.csv", indexed=True)
        ledger.add_rows(staging.id, [row(3, session=7)])
        retry = leases.claim(retried(ledger, older, failing).id, 2)
        assert isinstance(retry, RowLease)
        retry.finish(Outcome.SUCCEEDED, applied=True)
        ledger.open_batch(staging.id)

        newer = leases.claim(staging.id, 3)

        assert isinstance(newer, RowLease)


def failed_row(ledger: Ledger, leases: RowLeases, number: int) -> tuple[BatchInfo, RowLease]:
    """A batch of one row of session 7 that failed, retryable; the batch and the lease."""
    batch = opened(ledger, [row(number, session=7)])
    lease = leases.claim(batch.id, number)
    assert isinstance(lease, RowLease)
    lease.finish(Outcome.FAILED, retryable=True, reason="api_error")
    return batch, lease


def retried(ledger: Ledger, parent: BatchInfo, failed: RowLease) -> BatchInfo:
    """The open retry batch of ``parent``'s failed row, in its place in line (as ``retry``)."""
    child = ledger.create_batch(name="retry", kind="retry", source="t", parent_id=parent.id)
    again = row(failed.record.row, session=7)
    ledger.add_rows(child.id, [replace(again, extra={"parent_seq": failed.record.seq})])
    return ledger.open_batch(child.id)


class TestSucceededAfterErrors:
    def test_succeeded_row_drops_the_earlier_error(self, ledger: Ledger) -> None:
        """A row that succeeds after a retried error keeps no error as its reason or fields."""
        batch = opened(ledger, [row(1)])
        ledger.transition(
            batch.id,
            1,
            Outcome.RETRYING,
            error_type="APIError",
            error_code=None,
            error_message="Unexpected answer from Stripe (HTTP 504)",
            retryable=True,
        )

        ledger.transition(batch.id, 1, Outcome.SUCCEEDED, reason="confirmed_by_read_back")
        record = ledger.get_row(batch.id, 1)

        assert ("confirmed_by_read_back", None, None, None) == (
            record.reason,
            record.error_type,
            record.error_message,
            record.retryable,
        )

"""The ledger against a real Redis: batches, rows, atomic transitions, paging, retention."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import redis

from tests.integration.conftest import Clock
from vsbatch.errors import InputError, NotFoundError
from vsbatch.model.row import BatchInfo, BatchState, NewRow, Outcome, SkipReason
from vsbatch.store.keys import Keys
from vsbatch.store.ledger import Ledger
from vsbatch.store.locks import SessionLocks
from vsbatch.store.row_lease import Ended, RowLease, RowLeases
from vsbatch.store.scripts import lua_script

RETENTION = 3600
SELFIE = {"options": {"document": {"require_matching_selfie": True}}}


def sid(n: int) -> str:
    return f"vs_1{n:023d}"


def row(n: int, session: int | None = None, account: str | None = None) -> NewRow:
    key = hashlib.sha256(f"{n}".encode()).hexdigest()  # the shape updates.idempotency_key makes
    return NewRow(
        row=n,
        session_id=sid(n if session is None else session),
        account=account,
        params=SELFIE,
        idempotency_key=f"vsbatch-b_0123456789abcdef:{n}-{key}",
    )


def staged(ledger: Ledger, rows: list[NewRow]) -> BatchInfo:
    batch = ledger.create_batch(name="t", kind="csv", source="t.csv")
    ledger.add_rows(batch.id, rows)
    return batch


def opened(ledger: Ledger, rows: list[NewRow]) -> BatchInfo:
    return ledger.open_batch(staged(ledger, rows).id)


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


class TestRows:
    def test_rows_come_back_in_order_across_gaps(self, ledger: Ledger) -> None:
        """iter_rows returns every row in row order, whatever the gaps and insertion order."""
        numbers = [2500, 2, 7, 1003, 3, 4000]
        batch = staged(ledger, [row(n) for n in numbers])

        assert sorted(numbers) == [r.row for r in ledger.iter_rows(batch.id)]

    def test_row_record_round_trips(self, ledger: Ledger, clock: Clock) -> None:
        """A queued row keeps its session, account, params, key, seq and created_at."""
        batch = staged(ledger, [row(2, account="acct_1")])

        record = ledger.get_row(batch.id, 2)

        assert (sid(2), "acct_1", SELFIE, Outcome.QUEUED, 1, clock.now) == (
            record.session_id,
            record.account,
            record.params,
            record.outcome,
            record.seq,
            record.created_at,
        )

    def test_created_at_is_stored_after_the_batch_s_time(
        self, ledger: Ledger, clock: Clock, redis_client: redis.Redis
    ) -> None:
        """A row staged 90.5 s after its batch was created reads back created then, and its
        record holds the milliseconds since the batch's time (its id), not the full time."""
        clock.now = 1_800_000_000.123
        batch = ledger.create_batch(name="t", kind="csv", source="t.csv")
        clock.now += 90.5
        ledger.add_rows(batch.id, [row(2)])

        raw = json.loads(redis_client.hget(Keys().rows(batch.id), "2") or b"{}")

        assert (clock.now, 90_500, None) == (
            ledger.get_row(batch.id, 2).created_at,
            raw.get("cd"),
            raw.get("ca"),
        )

    def test_valid_rows_get_increasing_seq(self, ledger: Ledger) -> None:
        """Valid rows get consecutive global sequence numbers in input order."""
        batch = staged(ledger, [row(5), row(3), row(9)])

        assert [2, 1, 3] == [r.seq for r in ledger.iter_rows(batch.id)]

    def test_duplicate_session_rejected_with_first_row(self, ledger: Ledger) -> None:
        """A second row for the same session is rejected, naming the first row."""
        batch = staged(ledger, [row(2, session=1), row(3, session=1)])

        record = ledger.get_row(batch.id, 3)

        assert (Outcome.REJECTED, "id", "duplicate of row 2") == (
            record.outcome,
            record.column,
            record.reason,
        )

    def test_same_session_in_two_accounts_is_not_duplicate(self, ledger: Ledger) -> None:
        """Sessions are told apart by account."""
        batch = staged(ledger, [row(2, 1, "acct_a"), row(3, 1, "acct_b")])

        assert 2 == ledger.get_batch(batch.id).counts[Outcome.QUEUED]

    def test_rejection_is_recorded(self, ledger: Ledger) -> None:
        """A row rejected by validation keeps its column and reason, and no seq."""
        bad = NewRow(row=2, session_id="vs_x", account=None, params=None, rejection=("type", "no"))
        batch = staged(ledger, [bad])

        record = ledger.get_row(batch.id, 2)

        assert (Outcome.REJECTED, "type", "no", 0) == (
            record.outcome,
            record.column,
            record.reason,
            record.seq,
        )

    def test_re_adding_rows_writes_nothing_twice(self, ledger: Ledger) -> None:
        """Adding the same row numbers again changes neither rows nor counters."""
        batch = staged(ledger, [row(2), row(3)])

        again = ledger.add_rows(batch.id, [row(2), row(3)])

        assert (0, 2) == (again, ledger.get_batch(batch.id).total)

    def test_counts_add_up_to_total(self, ledger: Ledger) -> None:
        """Queued and rejected counts add up to the total."""
        bad = NewRow(row=9, session_id="", account=None, params=None, rejection=(None, "empty"))
        batch = staged(ledger, [row(2), row(3, session=2), row(4), bad])

        info = ledger.get_batch(batch.id)

        assert (4, 2, 2, 4) == (
            info.total,
            info.counts[Outcome.QUEUED],
            info.counts[Outcome.REJECTED],
            sum(info.counts.values()),
        )

    def test_add_rows_to_unknown_batch(self, ledger: Ledger) -> None:
        """Adding rows to an unknown batch raises NotFoundError."""
        with pytest.raises(NotFoundError):
            ledger.add_rows("b_nope", [row(2)])

    def test_add_rows_to_done_batch_refused(self, ledger: Ledger) -> None:
        """A finished batch takes no more rows."""
        batch = opened(ledger, [row(2)])
        ledger.transition(batch.id, 2, Outcome.SUCCEEDED)

        with pytest.raises(InputError):
            ledger.add_rows(batch.id, [row(3)])

    def test_unknown_row_is_not_found(self, ledger: Ledger) -> None:
        """get_row of a missing row raises NotFoundError."""
        batch = staged(ledger, [row(2)])

        with pytest.raises(NotFoundError):
            ledger.get_row(batch.id, 3)

    def test_iter_rows_filters_by_outcome(self, ledger: Ledger) -> None:
        """iter_rows with outcomes yields only rows in those outcomes."""
        batch = opened(ledger, [row(n) for n in range(2, 8)])
        for n in (3, 5):
            ledger.transition(batch.id, n, Outcome.FAILED, retryable=True)

        assert [3, 5] == [r.row for r in ledger.iter_rows(batch.id, [Outcome.FAILED])]

    def test_pending_rows_in_order_with_their_account(self, ledger: Ledger) -> None:
        """pending_rows yields the non-terminal rows in order, each with its account."""
        account = {n: "acct_1" if n % 3 else None for n in range(2, 2502)}
        batch = opened(ledger, [row(n, account=account[n]) for n in range(2, 2502)])
        for n in range(2, 1002):
            ledger.transition(batch.id, n, Outcome.SUCCEEDED)

        pending = list(ledger.pending_rows(batch.id))

        assert [(n, account[n]) for n in range(1002, 2502)] == pending

    def test_pending_rows_come_as_runs_without_records(
        self, ledger: Ledger, redis_client: redis.Redis
    ) -> None:
        """2,500 unfinished rows of two accounts come from one script call that reads no
        record out (page.lua is not run): runs of one account each."""
        rows = [row(n, account="acct_1" if n < 1000 else None) for n in range(2, 2502)]
        batch = opened(ledger, rows)
        redis_client.script_load(lua_script("unfinished.lua"))
        redis_client.config_resetstat()

        pending = list(ledger.pending_rows(batch.id))

        stats = redis_client.info("commandstats")
        expected = [(n, "acct_1" if n < 1000 else None) for n in range(2, 2502)]
        assert (expected, 1) == (pending, stats["cmdstat_evalsha"]["calls"])

    def test_pending_rows_skip_gaps_and_final_rows(self, ledger: Ledger) -> None:
        """Unfinished rows come out across gaps in row numbers, past final rows, and a queued
        row whose metadata holds text like a stored outcome stays unfinished; rows that
        moved keep their account."""
        looks_final = NewRow(8, sid(8), None, {"metadata": {"o": "succeeded"}})
        rejected = NewRow(7, sid(7), None, None, rejection=("id", "bad"))
        numbers = [*range(2, 7), 9, *range(12, 21)]
        rows = [row(n, account="acct_2" if n in (4, 6) else None) for n in numbers]
        batch = opened(ledger, [*rows, rejected, looks_final])
        ledger.transition(batch.id, 5, Outcome.SUCCEEDED)
        ledger.transition(batch.id, 6, Outcome.RUNNING)

        pending = list(ledger.pending_rows(batch.id))

        accounts = {4: "acct_2", 6: "acct_2"}
        expected = [(n, accounts.get(n)) for n in [2, 3, 4, 6, 8, 9, *range(12, 21)]]
        assert expected == pending

    def test_iter_rows_pages_in_blocks(self, ledger: Ledger, redis_client: redis.Redis) -> None:
        """iter_rows reads pages of 1000 row numbers (page.lua), never the whole hash at once."""
        batch = staged(ledger, [row(n) for n in range(2, 2502)])
        redis_client.script_load(lua_script("page.lua"))
        redis_client.config_resetstat()

        rows = sum(1 for _ in ledger.iter_rows(batch.id))

        stats = redis_client.info("commandstats")
        assert (2500, 3, 2500, False) == (
            rows,
            stats["cmdstat_evalsha"]["calls"],
            stats["cmdstat_hget"]["calls"],
            "cmdstat_hgetall" in stats or "cmdstat_hscan" in stats,
        )

    def test_staging_writes_a_call_with_one_command_a_key(
        self, ledger: Ledger, redis_client: redis.Redis
    ) -> None:
        """2,500 file rows in order are staged in 3 script calls, each writing its records and
        its sessions with one HSET, and the batch's row range (no write or existence check
        per row: each write is a command of its own in the append-only file)."""
        batch = ledger.create_batch(name="t", kind="csv", source="t.csv", indexed=True)
        redis_client.script_load(lua_script("add_rows.lua"))
        redis_client.config_resetstat()

        ledger.add_rows(batch.id, [row(n) for n in range(2, 2502)])

        stats = redis_client.info("commandstats")
        assert (3, True, 0, 0, 0) == (
            stats["cmdstat_evalsha"]["calls"],
            stats["cmdstat_hset"]["calls"] <= 3 * 4,
            stats.get("cmdstat_hsetnx", {}).get("calls", 0),
            stats.get("cmdstat_hexists", {}).get("calls", 0),
            stats.get("cmdstat_zadd", {}).get("calls", 0),
        )

    def test_add_rows_streams_a_large_generator(self, ledger: Ledger) -> None:
        """100,000 rows from a generator are written as they come, not after it ends (at
        most three round trips of 4,000 rows behind: one running, one waiting, one built)."""
        batch = ledger.create_batch(name="big", kind="csv", source="big.csv")
        written_when_half_read: list[int] = []

        def rows() -> Iterator[NewRow]:
            for n in range(2, 100_002):
                if n == 50_002:
                    written_when_half_read.append(ledger.get_batch(batch.id).total)
                yield row(n)

        written = ledger.add_rows(batch.id, rows())

        info = ledger.get_batch(batch.id)
        assert (100_000, 100_000, 100_000, True) == (
            written,
            info.total,
            info.counts[Outcome.QUEUED],
            38_000 <= written_when_half_read[0] < 50_000,
        )


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

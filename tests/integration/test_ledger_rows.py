"""The ledger against a real Redis: rows (adding and staging them, duplicates and rejections,
reading, counting, pending rows and paging).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis

from tests.integration.conftest import Clock
from tests.integration.ledger_data import SELFIE, opened, row, sid, staged
from vsbatch.errors import InputError, NotFoundError
from vsbatch.model.row import NewRow, Outcome
from vsbatch.store.keys import Keys
from vsbatch.store.ledger import Ledger
from vsbatch.store.scripts import lua_script


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

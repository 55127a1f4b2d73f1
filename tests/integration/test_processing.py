"""One row at a time, without Celery: every path of ``process_row`` against the real emulator."""

from __future__ import annotations

import time
from typing import Any

from vsbatch.bootstrap import Deps
from vsbatch.model.row import NewRow, Outcome, RowRecord
from vsbatch.model.update import idempotency_key, parse_update
from vsbatch.worker.process_row import process_row
from vsbatch.worker.row_options import Later, RowOptions

UPDATE = {"metadata": {"tier": "gold"}}


def no_sleep(_seconds: float) -> None:
    """Retries in these tests never really wait."""


def submit(deps: Deps, session_id: str, params: dict[str, Any] = UPDATE) -> str:
    """A one-row open batch for ``session_id``; returns the batch id (row 2)."""
    batch = deps.ledger.create_batch(name="t", kind="csv", source="test")
    key = idempotency_key(f"{batch.id}:2", parse_update(params))
    deps.ledger.add_rows(batch.id, [NewRow(2, session_id, None, params, idempotency_key=key)])
    deps.ledger.open_batch(batch.id)
    return batch.id


def run(deps: Deps, batch_id: str, **options: Any) -> tuple[Outcome | Later, RowRecord]:
    outcome = process_row(deps, batch_id, 2, options=RowOptions(**options), sleep=no_sleep)
    return outcome, deps.ledger.get_row(batch_id, 2)


class TestOutcomes:
    def test_success_records_request_id_and_status(self, deps: Deps, emulator: Any) -> None:
        """An applied update ends succeeded with Stripe's request id and the session's status."""
        (sid,) = emulator.seed(count=1)

        outcome, record = run(deps, submit(deps, sid))

        assert Outcome.SUCCEEDED == outcome
        assert ("requires_input", 1) == (record.session_status, record.attempts)
        assert record.request_id is not None and record.request_id.startswith("req_")
        assert {sid: 1} == emulator.stats()["applied"]

    def test_applied_then_500_is_confirmed_by_read_back(self, deps: Deps, emulator: Any) -> None:
        """A stored 500 after the update took effect ends succeeded, applied once."""
        (sid,) = emulator.seed(count=1)
        emulator.configure(fail_500_after_rate=1.0)

        outcome, record = run(deps, submit(deps, sid))

        assert (Outcome.SUCCEEDED, "confirmed_by_read_back") == (outcome, record.reason)
        assert {sid: 1} == emulator.stats()["applied"]

    def test_unknown_session_fails_for_good(self, deps: Deps) -> None:
        """A 404 is a failure no retry can fix."""
        outcome, record = run(deps, submit(deps, "vs_" + "N" * 24))

        assert Outcome.FAILED == outcome
        assert (False, "resource_missing", 1) == (
            record.retryable,
            record.error_code,
            record.attempts,
        )

    def test_session_not_awaiting_input_is_skipped(self, deps: Deps, emulator: Any) -> None:
        """A refusal for the session's status, confirmed by a read-back, is a skip."""
        (sid,) = emulator.seed(count=1, status="verified")

        outcome, record = run(deps, submit(deps, sid))

        assert (Outcome.SKIPPED, "not_requires_input", "verified") == (
            outcome,
            record.reason,
            record.session_status,
        )

    def test_outage_fails_retryable_after_bounded_attempts(self, deps: Deps, emulator: Any) -> None:
        """503 on every attempt: failed, retryable, after exactly max_attempts tries."""
        (sid,) = emulator.seed(count=1)
        emulator.configure(fail_503_rate=1.0)

        outcome, record = run(deps, submit(deps, sid))

        assert (Outcome.FAILED, True, 3) == (outcome, record.retryable, record.attempts)
        assert {} == emulator.stats()["applied"]

    def test_outage_with_parking_keeps_the_row_in_flight(self, deps: Deps, emulator: Any) -> None:
        """With park_hours, an outage leaves the row retrying and asks to come back later."""
        (sid,) = emulator.seed(count=1)
        emulator.configure(fail_503_rate=1.0)

        outcome, record = run(deps, submit(deps, sid), park_hours=1.0)

        assert isinstance(outcome, Later)
        assert Outcome.RETRYING == record.outcome

    def test_rate_limited_row_goes_back_in_line_then_fails_retryable(
        self, deps: Deps, emulator: Any
    ) -> None:
        """429 on every attempt: the row comes back later, key kept, for a bounded number of
        rounds, then fails retryable; it is never applied."""
        # Given a session Stripe answers 429 for, every time
        (sid,) = emulator.seed(count=1)
        emulator.configure(lock_timeout_rate=1.0)
        batch_id = submit(deps, sid)
        key = deps.ledger.get_row(batch_id, 2).idempotency_key

        # When the row is run until it stops asking to come back
        delays: list[float] = []
        outcome, record = run(deps, batch_id)
        while isinstance(outcome, Later):
            assert (Outcome.RETRYING, key) == (record.outcome, record.idempotency_key)
            delays.append(outcome.delay)
            outcome, record = run(deps, batch_id)

        # Then it came back RATE_LIMIT_ROUNDS - 1 times, pausing longer each time, then failed
        assert [2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0] == delays
        assert (Outcome.FAILED, True, "lock_timeout", 3 * 8) == (
            outcome,
            record.retryable,
            record.error_code,
            record.attempts,
        )
        assert {} == emulator.stats()["applied"]

    def test_timeout_then_same_key_applies_once(self, deps: Deps, emulator: Any) -> None:
        """A request that times out but applies later is replayed, not applied again."""
        # Given a request that hangs 0.8 s (past the 0.5 s client timeout) and then applies
        (sid,) = emulator.seed(count=1)
        emulator.configure(hang_rate=1.0, hang_seconds=0.8, hang_applies=True)
        batch_id = submit(deps, sid)

        # When the retry comes after the first request finished (0.5 s timeout + 0.5 s pause)
        outcome = process_row(deps, batch_id, 2, sleep=lambda _s: time.sleep(0.5))
        record = deps.ledger.get_row(batch_id, 2)

        # Then the second attempt got the stored answer under the same key
        assert (Outcome.SUCCEEDED, 2) == (outcome, record.attempts)
        assert {sid: 1} == emulator.stats()["applied"]
        assert 1 <= emulator.stats()["replayed"]

    def test_request_maybe_still_executing_keeps_the_key(self, deps: Deps, emulator: Any) -> None:
        """Timeouts with the change not (yet) visible keep the row in line under the same key."""
        # Given requests that hang past every client timeout and have not applied
        (sid,) = emulator.seed(count=1)
        emulator.configure(hang_rate=1.0, hang_seconds=3.0, hang_applies=False)
        batch_id = submit(deps, sid)
        key = deps.ledger.get_row(batch_id, 2).idempotency_key

        outcome = process_row(deps, batch_id, 2, sleep=lambda _s: time.sleep(0.1))
        record = deps.ledger.get_row(batch_id, 2)

        assert (Later(2.0), Outcome.RETRYING, key) == (
            outcome,
            record.outcome,
            record.idempotency_key,
        )
        assert {} == emulator.stats()["applied"]


class TestSkips:
    def test_canceled_batch_sends_nothing(self, deps: Deps, emulator: Any) -> None:
        """Rows of a canceled batch end skipped without a request."""
        (sid,) = emulator.seed(count=1)
        batch_id = submit(deps, sid)
        deps.ledger.cancel(batch_id)

        outcome, record = run(deps, batch_id)

        assert (Outcome.SKIPPED, "batch_canceled") == (outcome, record.reason)
        assert {} == emulator.stats()["requests"]

    def test_newer_update_applied_supersedes(self, deps: Deps, emulator: Any) -> None:
        """A row older than an update already applied to its session is skipped."""
        (sid,) = emulator.seed(count=1)
        batch_id = submit(deps, sid)
        deps.redis.set(deps.ledger.keys.applied(None, sid), 10**9)  # applied after the row's place

        outcome, record = run(deps, batch_id)

        assert (Outcome.SKIPPED, "superseded") == (outcome, record.reason)
        assert {} == emulator.stats()["applied"]

    def test_retried_row_keeps_its_original_place_in_line(self, deps: Deps, emulator: Any) -> None:
        """A retry of an old update is superseded by a newer one applied in the meantime."""
        (sid,) = emulator.seed(count=1)
        old_seq = 1
        deps.redis.set(deps.ledger.keys.applied(None, sid), 10**9)
        batch = deps.ledger.create_batch(name="retry", kind="retry", source="t")
        retried = NewRow(2, sid, None, UPDATE, idempotency_key="k", extra={"parent_seq": old_seq})
        deps.ledger.add_rows(batch.id, [retried])
        deps.ledger.open_batch(batch.id)

        outcome, record = run(deps, batch.id)

        assert (Outcome.SKIPPED, "superseded") == (outcome, record.reason)
        assert {} == emulator.stats()["applied"]

    def test_read_first_skips_unchanged(self, deps: Deps, emulator: Any) -> None:
        """With read_first, a session already as asked is skipped without a write."""
        (sid,) = emulator.seed(count=1, metadata={"tier": "gold"})

        outcome, record = run(deps, submit(deps, sid), read_first=True)

        assert (Outcome.SKIPPED, "unchanged") == (outcome, record.reason)
        assert {} == emulator.stats()["applied"]

    def test_final_row_is_not_sent_again(self, deps: Deps, emulator: Any) -> None:
        """Processing a finished row again (a redelivery) sends nothing and moves nothing."""
        (sid,) = emulator.seed(count=1)
        batch_id = submit(deps, sid)
        run(deps, batch_id)
        before = emulator.stats()["requests"]

        outcome, _ = run(deps, batch_id)

        assert Outcome.SUCCEEDED == outcome
        assert before == emulator.stats()["requests"]
        assert 1 == deps.ledger.get_batch(batch_id).counts[Outcome.SUCCEEDED]

    def test_locked_session_comes_back_later(self, deps: Deps, emulator: Any) -> None:
        """While another worker holds the session's lock, the row is handed back."""
        (sid,) = emulator.seed(count=1)
        batch_id = submit(deps, sid)
        token = deps.locks.acquire(None, sid)
        try:
            outcome, record = run(deps, batch_id, lock_wait=0.0)
        finally:
            assert token is not None
            deps.locks.release(None, sid, token)

        assert isinstance(outcome, Later)
        assert Outcome.QUEUED == record.outcome


class TestLeanRecords:
    def test_a_staged_csv_row_stores_no_key_it_can_derive(
        self, deps: Deps, emulator: Any, tmp_path: Any
    ) -> None:
        """A CSV row's record holds no idempotency key (100 bytes a row): the worker derives
        the same key from batch, row and update, and the row is applied once under it."""
        import json

        from vsbatch.intake.stage import submit_csv
        from vsbatch.model.update import row_key

        # Given a staged CSV row
        (sid,) = emulator.seed(count=1)
        path = tmp_path / "one.csv"
        path.write_text(f"id,metadata.tier\n{sid},gold\n", encoding="utf-8")
        batch = submit_csv(deps, path, lambda *_: None)
        raw = json.loads(deps.redis.hget(deps.ledger.keys.rows(batch.id), "2"))

        # When the worker runs it
        outcome, record = run(deps, batch.id)

        # Then no key was stored, the derived one is the old rule's, and it applied once
        assert record.params is not None
        expected = idempotency_key(f"{batch.id}:2", parse_update(record.params))
        assert ("k" in raw, row_key(batch.id, 2, record.params), outcome) == (
            False,
            expected,
            Outcome.SUCCEEDED,
        )
        assert {sid: 1} == emulator.stats()["applied"]

    def test_a_row_applied_at_once_writes_no_event(self, deps: Deps, emulator: Any) -> None:
        """A row that goes queued -> running -> succeeded leaves no event: its record tells it
        (two events a row were most of the stream's bytes)."""
        (sid,) = emulator.seed(count=1)
        batch_id = submit(deps, sid)

        outcome, _ = run(deps, batch_id)

        assert (Outcome.SUCCEEDED, 0) == (
            outcome,
            deps.redis.xlen(deps.ledger.keys.events(batch_id)),
        )

    def test_a_plain_row_is_two_script_calls(self, deps: Deps, emulator: Any) -> None:
        """A row applied at once costs two round trips to Redis, claim and finish: the claim
        also takes the row's first rate slot (it used to be a third script call per row), and
        the slot still counts in the account's schedule."""
        warm, sid = emulator.seed(count=2)
        run(deps, submit(deps, warm))  # the scripts are loaded before counting
        batch_id = submit(deps, sid)
        deps.redis.config_resetstat()

        outcome, _ = run(deps, batch_id)

        stats = deps.redis.info("commandstats")
        tat = deps.redis.hget(deps.limiter.keys.rate(None), "tat")
        assert (Outcome.SUCCEEDED, 2, True) == (
            outcome,
            stats["cmdstat_evalsha"]["calls"] + stats.get("cmdstat_eval", {}).get("calls", 0),
            tat is not None,
        )

    def test_read_first_uses_the_claims_slot_for_its_read(self, deps: Deps, emulator: Any) -> None:
        """With read-first, the read takes the slot the claim reserved and the update takes
        the next: two slots in the account's schedule for two requests, none wasted."""
        (sid,) = emulator.seed(count=1)
        batch_id = submit(deps, sid, {"metadata": {"tier": "platinum"}})

        outcome, _ = run(deps, batch_id, read_first=True)

        tat = float(deps.redis.hget(deps.limiter.keys.rate(None), "tat") or 0)
        interval_ms = 1000 / deps.limiter.configured_rate(None)
        first = tat - 2 * interval_ms  # the first slot's time, if exactly two were taken
        now_ms = time.time() * 1000
        assert (Outcome.SUCCEEDED, True) == (outcome, now_ms - 5_000 < first <= now_ms)

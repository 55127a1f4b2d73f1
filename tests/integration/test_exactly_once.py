"""Exactly once behind gateways and odd answers: ``process_row`` against the emulator's socket.

Only a 500 that Stripe marked as stored may lead to a new idempotency key; a gateway's 5xx, a
200 that is not our session and a body that does not parse keep the row's key, and keep the
row in line (not ended) for a few rounds while Stripe may still apply it. The emulator's
per-session application count proves nothing was applied twice.
"""

from __future__ import annotations

import time
from typing import Any

from tests.integration.test_processing import run, submit
from vsbatch.bootstrap import Deps
from vsbatch.model.row import Outcome, RowRecord
from vsbatch.worker.row_options import UNSETTLED_ROUNDS, Later


def settled_applications(emulator: Any, timeout: float = 10.0) -> dict[str, int]:
    """Applications per session once nothing is left to run behind a gateway's answer."""
    deadline = time.monotonic() + timeout
    while (stats := emulator.stats())["gateway_pending"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert 0 == stats["gateway_pending"]
    applied: dict[str, int] = stats["applied"]
    return applied


def run_to_end(
    deps: Deps, batch_id: str, pause: float = 0.0
) -> tuple[Outcome, RowRecord, list[float]]:
    """Run the row until it stops asking to come back, sleeping ``pause`` x each asked delay;
    returns its outcome, its record and the delays it asked for (its key checked each time)."""
    key = deps.ledger.get_row(batch_id, 2).idempotency_key
    delays: list[float] = []
    outcome, record = run(deps, batch_id)
    while isinstance(outcome, Later):
        assert (Outcome.RETRYING, key) == (record.outcome, record.idempotency_key)
        delays.append(outcome.delay)
        time.sleep(outcome.delay * pause)
        outcome, record = run(deps, batch_id)
    return outcome, record, delays


class TestGatewayOutage:
    def test_late_apply_after_an_outage_keeps_the_row_and_the_sessions_order(
        self, deps: Deps, emulator: Any
    ) -> None:
        """A row whose every attempt met a 502 while Stripe applies it later stays in line
        under its key: it succeeds, applied once, and the session's next row lands after it."""
        # Given a gateway outage (every update 502) whose requests reach Stripe 5 s later,
        # and a second update of the same session queued behind the first
        (sid,) = emulator.seed(count=1)
        emulator.configure(gateway_rate=1.0, gateway_answer="502", gateway_delay_seconds=5.0)
        first = submit(deps, sid, {"metadata": {"tier": "gold"}})
        second = submit(deps, sid, {"metadata": {"tier": "platinum"}})

        # When the first row runs during the outage, the outage ends, the second row runs,
        # and then both run until they stop asking to come back
        during = run(deps, first)[0]
        emulator.configure(gateway_rate=0.0)
        meanwhile = run(deps, second)[0]
        applied = settled_applications(emulator)  # the late request has landed
        outcomes = [run_to_end(deps, batch)[0] for batch in (first, second)]

        # Then the first row waited, and the session ends with the second row's update
        final = deps.stripe().retrieve(sid).metadata
        assert (True, True) == (isinstance(during, Later), isinstance(meanwhile, Later))
        assert [Outcome.SUCCEEDED, Outcome.SUCCEEDED] == outcomes
        assert ({sid: 1}, {sid: 2}, "platinum") == (
            applied,
            settled_applications(emulator),
            final.get("tier"),
        )


class TestGatewayErrors:
    def test_late_apply_behind_504_is_applied_once_under_the_key(
        self, deps: Deps, emulator: Any
    ) -> None:
        """A 504 while Stripe applies later: the row comes back under its own key until the
        change shows, and succeeds, applied once, never re-sent under a new key."""
        # Given a gateway answering 504 to every update while Stripe applies it 0.3 s later
        (sid,) = emulator.seed(count=1)
        emulator.configure(gateway_rate=1.0, gateway_answer="504", gateway_delay_seconds=0.3)
        batch_id = submit(deps, sid)

        # When the row runs until it ends (its first read-back comes before the change lands),
        # pausing a tenth of each delay it asks for
        outcome, record, delays = run_to_end(deps, batch_id, pause=0.1)

        # Then it came back under its key, and the session was updated exactly once
        assert (Outcome.SUCCEEDED, "confirmed_by_read_back") == (outcome, record.reason)
        assert (True, {sid: 1}) == (bool(delays), settled_applications(emulator))

    def test_apply_behind_502_is_confirmed_by_read_back(self, deps: Deps, emulator: Any) -> None:
        """A 502 while Stripe applied the update: the read-back proves it, applied once."""
        (sid,) = emulator.seed(count=1)
        emulator.configure(gateway_rate=1.0, gateway_answer="502")

        outcome, record = run(deps, submit(deps, sid))

        assert (Outcome.SUCCEEDED, "confirmed_by_read_back") == (outcome, record.reason)
        assert {sid: 1} == settled_applications(emulator)


class TestAnswersThatAreNotOurSession:
    def test_another_sessions_200_not_applied_is_not_success(
        self, deps: Deps, emulator: Any
    ) -> None:
        """A 200 carrying another session, with nothing applied, comes back under its key for
        the unsettled rounds, then fails retryable under it."""
        (sid,) = emulator.seed(count=1)
        emulator.configure(
            gateway_rate=1.0, gateway_answer="200_other_session", gateway_applies=False
        )
        batch_id = submit(deps, sid)
        key = deps.ledger.get_row(batch_id, 2).idempotency_key

        outcome, record, delays = run_to_end(deps, batch_id)

        assert (Outcome.FAILED, True, key) == (outcome, record.retryable, record.idempotency_key)
        assert (UNSETTLED_ROUNDS - 1, {}) == (len(delays), settled_applications(emulator))

    def test_another_sessions_200_applied_is_confirmed_by_read_back(
        self, deps: Deps, emulator: Any
    ) -> None:
        """A 200 carrying another session while ours was applied succeeds only by read-back."""
        (sid,) = emulator.seed(count=1)
        emulator.configure(gateway_rate=1.0, gateway_answer="200_other_session")

        outcome, record = run(deps, submit(deps, sid))

        assert (Outcome.SUCCEEDED, "confirmed_by_read_back") == (outcome, record.reason)
        assert {sid: 1} == settled_applications(emulator)

    def test_unparsable_200_keeps_the_key(self, deps: Deps, emulator: Any) -> None:
        """A 200 HTML page with nothing applied ends, after the unsettled rounds, failed
        retryable under the row's own key."""
        (sid,) = emulator.seed(count=1)
        emulator.configure(gateway_rate=1.0, gateway_answer="200_html", gateway_applies=False)
        batch_id = submit(deps, sid)
        key = deps.ledger.get_row(batch_id, 2).idempotency_key

        outcome, record, _ = run_to_end(deps, batch_id)

        assert (Outcome.FAILED, True, key) == (outcome, record.retryable, record.idempotency_key)
        assert {} == settled_applications(emulator)


class TestMixedAnswers:
    def test_a_503_after_a_504_does_not_end_the_row_while_the_504_may_land(
        self, deps: Deps, emulator: Any
    ) -> None:
        """The first attempt meets a 504 whose request lands later, the others plain 503s:
        the row stays in line under its key (it may have been applied), never ends failed."""
        from vsbatch.worker.process_row import process_row
        from vsbatch.worker.row_options import RowOptions

        # Given a 504 for the first attempt (Stripe applies it 1 s later), then 503s only
        (sid,) = emulator.seed(count=1)
        emulator.configure(gateway_rate=1.0, gateway_answer="504", gateway_delay_seconds=1.0)
        batch = submit(deps, sid, {"metadata": {"tier": "gold"}})

        def switch_to_503s(_seconds: float) -> None:
            emulator.configure(gateway_rate=0.0, fail_503_rate=1.0)

        # When the row runs its in-task attempts
        outcome = process_row(deps, batch, 2, options=RowOptions(), sleep=switch_to_503s)

        # Then it goes back in line (key kept) rather than failing, and once the 503s end
        # its next send is replayed: succeeded, applied once
        assert isinstance(outcome, Later)
        applied = settled_applications(emulator)
        emulator.configure(fail_503_rate=0.0)
        final = run_to_end(deps, batch)[0]
        assert ({sid: 1}, Outcome.SUCCEEDED) == (applied, final)
        assert {sid: 1} == emulator.stats()["applied"]

    def test_an_unknown_outcome_in_an_earlier_round_keeps_the_row_in_line(
        self, deps: Deps, emulator: Any
    ) -> None:
        """Round 1 meets only 504s (Stripe applies the request a second later), round 2 only
        503s: the row must not end failed in round 2, for round 1's request may still land."""
        # Given a round of 504s whose request lands 1 s later, the row back in line
        (sid,) = emulator.seed(count=1)
        emulator.configure(gateway_rate=1.0, gateway_answer="504", gateway_delay_seconds=1.0)
        batch = submit(deps, sid, {"metadata": {"tier": "gold"}})
        first, _record = run(deps, batch)
        assert isinstance(first, Later)

        # When the next round meets only 503s
        emulator.configure(gateway_rate=0.0, fail_503_rate=1.0)
        second, record = run(deps, batch)

        # Then the row is still in line under its key, and once the 503s end it succeeds
        # (its send replayed): applied once
        assert (Later, Outcome.RETRYING) == (type(second), record.outcome)
        applied = settled_applications(emulator)
        emulator.configure(fail_503_rate=0.0)
        final = run_to_end(deps, batch)[0]
        assert ({sid: 1}, Outcome.SUCCEEDED) == (applied, final)
        assert {sid: 1} == emulator.stats()["applied"]

"""Exactly once behind gateways and odd answers: ``process_row`` against the emulator's socket.

Only a 500 that Stripe marked as stored may lead to a new idempotency key; a gateway's 5xx, a
200 that is not our session and a body that does not parse keep the row's key, and the
emulator's per-session application count proves nothing was applied twice.
"""

from __future__ import annotations

import time
from typing import Any

from tests.integration.test_processing import run, submit
from vsbatch.bootstrap import Deps
from vsbatch.ledger import Outcome


def settled_applications(emulator: Any, timeout: float = 10.0) -> dict[str, int]:
    """Applications per session once nothing is left to run behind a gateway's answer."""
    deadline = time.monotonic() + timeout
    while (stats := emulator.stats())["gateway_pending"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert 0 == stats["gateway_pending"]
    applied: dict[str, int] = stats["applied"]
    return applied


class TestGatewayErrors:
    def test_late_apply_behind_504_is_applied_once_and_keeps_the_key(
        self, deps: Deps, emulator: Any
    ) -> None:
        """A 504 while Stripe applies later: the row fails retryable under its own key, applied
        once, never re-sent under a new key."""
        # Given a gateway answering 504 to every update while Stripe applies it 0.3 s later
        (sid,) = emulator.seed(count=1)
        emulator.configure(gateway_rate=1.0, gateway_answer="504", gateway_delay_seconds=0.3)
        batch_id = submit(deps, sid)
        key = deps.ledger.get_row(batch_id, 2).idempotency_key

        # When the row runs (its read-back comes before the change lands)
        outcome, record = run(deps, batch_id)

        # Then the key was kept, and the session was updated exactly once
        assert (Outcome.FAILED, True, key) == (outcome, record.retryable, record.idempotency_key)
        assert {sid: 1} == settled_applications(emulator)

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
        """A 200 carrying another session, with nothing applied, fails retryable under its key."""
        (sid,) = emulator.seed(count=1)
        emulator.configure(
            gateway_rate=1.0, gateway_answer="200_other_session", gateway_applies=False
        )
        batch_id = submit(deps, sid)
        key = deps.ledger.get_row(batch_id, 2).idempotency_key

        outcome, record = run(deps, batch_id)

        assert (Outcome.FAILED, True, key) == (outcome, record.retryable, record.idempotency_key)
        assert {} == settled_applications(emulator)

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
        """A 200 HTML page with nothing applied fails retryable under the row's own key."""
        (sid,) = emulator.seed(count=1)
        emulator.configure(gateway_rate=1.0, gateway_answer="200_html", gateway_applies=False)
        batch_id = submit(deps, sid)
        key = deps.ledger.get_row(batch_id, 2).idempotency_key

        outcome, record = run(deps, batch_id)

        assert (Outcome.FAILED, True, key) == (outcome, record.retryable, record.idempotency_key)
        assert {} == settled_applications(emulator)

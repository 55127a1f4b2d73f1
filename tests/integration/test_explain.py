"""A row's story (``vsbatch explain``) assembled from a real ledger: the record, and the batch's
events stream when it holds the row's transitions."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from tests.integration.conftest import Clock
from vsbatch.errors import NotFoundError
from vsbatch.model.row import BatchInfo, NewRow, Outcome, SkipReason
from vsbatch.ops.explain import explain_row, story_lines
from vsbatch.store.ledger import Ledger

SID = "vs_1EXPLAINAAAAAAAAAAAAAAAA"
KEY = "vsbatch-b_0123456789abcdef:2-0f0f"
UPDATE = {"metadata": {"tier": "gold"}}


def opened(ledger: Ledger, *rows: NewRow) -> BatchInfo:
    batch = ledger.create_batch(name="t", kind="csv", source="t.csv")
    ledger.add_rows(batch.id, list(rows) or [NewRow(2, SID, "acct_1", UPDATE, KEY)])
    return ledger.open_batch(batch.id)


def step(ledger: Ledger, clock: Clock, batch_id: str, to: Outcome, **fields: Any) -> None:
    """One transition of row 2, one second after the last."""
    clock.now += 1
    ledger.transition(batch_id, 2, to, **fields)


class TestSucceededWithoutEvents:
    def test_the_record_alone_tells_the_story(
        self, ledger: Ledger, clock: Clock, redis_client: redis.Redis
    ) -> None:
        """A row applied on its first attempt, with no event in the stream, still has its
        input, key, attempt, answer and outcome."""
        # Given a row applied at once, and an engine that wrote no event for it
        batch = opened(ledger)
        step(
            ledger,
            clock,
            batch.id,
            Outcome.SUCCEEDED,
            attempts=1,
            request_id="req_ok",
            session_status="requires_input",
        )
        redis_client.delete(ledger.keys.events(batch.id))

        # When
        story = explain_row(ledger, batch.id, 2)

        # Then
        assert (Outcome.SUCCEEDED, SID, "acct_1", UPDATE, 1, [KEY], "req_ok", [], None) == (
            story.outcome,
            story.session_id,
            story.account,
            story.update,
            story.attempts,
            story.keys,
            story.request_id,
            story.transitions,
            story.next_step,
        )

    def test_its_lines_say_it_was_applied_once(
        self, ledger: Ledger, clock: Clock, redis_client: redis.Redis
    ) -> None:
        """The plain-words story of such a row names the key, the request and the outcome."""
        batch = opened(ledger)
        step(ledger, clock, batch.id, Outcome.SUCCEEDED, attempts=1, request_id="req_ok")
        redis_client.delete(ledger.keys.events(batch.id))

        text = "\n".join(story_lines(explain_row(ledger, batch.id, 2)))

        assert [True, True, True, True] == [
            "sent 1 time" in text,
            KEY in text,
            "req_ok" in text,
            "outcome: succeeded" in text,
        ], text


class TestRetriesAndNewKey:
    def _history(self, ledger: Ledger, clock: Clock) -> str:
        # Two answers under the first key, a read-back without the change, a new key, success.
        batch = opened(ledger)
        step(ledger, clock, batch.id, Outcome.RUNNING)
        step(
            ledger,
            clock,
            batch.id,
            Outcome.RETRYING,
            attempts=1,
            error_type="api_error",
            error_message="boom",
            request_id="req_a",
        )
        step(
            ledger,
            clock,
            batch.id,
            Outcome.RETRYING,
            attempts=2,
            idempotency_key=KEY + "~g2",
            error_type="api_error",
            error_message="stored 500",
            request_id="req_b",
        )
        step(ledger, clock, batch.id, Outcome.SUCCEEDED, attempts=3, request_id="req_c")
        return batch.id

    def test_transitions_come_in_time_order(self, ledger: Ledger, clock: Clock) -> None:
        """Every transition of the row is told, oldest first, with its time."""
        batch_id = self._history(ledger, clock)

        story = explain_row(ledger, batch_id, 2)

        start = 1_800_000_000.0
        assert [
            (start + 1, "queued", "running"),
            (start + 2, "running", "retrying"),
            (start + 3, "retrying", "retrying"),
            (start + 4, "retrying", "succeeded"),
        ] == [(t.at, t.source, t.target) for t in story.transitions]

    def test_both_keys_and_all_attempts_are_told(self, ledger: Ledger, clock: Clock) -> None:
        """The story lists the first key and the new generation's key, and counts attempts
        across both."""
        batch_id = self._history(ledger, clock)

        story = explain_row(ledger, batch_id, 2)

        assert ([KEY, KEY + "~g2"], 3, "req_c") == (story.keys, story.attempts, story.request_id)

    def test_other_rows_events_are_left_out(self, ledger: Ledger, clock: Clock) -> None:
        """Transitions of the batch's other rows are not part of the row's story."""
        batch = opened(
            ledger,
            NewRow(2, SID, None, UPDATE, KEY),
            NewRow(3, "vs_1OTHERAAAAAAAAAAAAAAAAAA", None, UPDATE, KEY + "3"),
        )
        ledger.transition(batch.id, 3, Outcome.RUNNING)
        step(ledger, clock, batch.id, Outcome.RUNNING)
        ledger.transition(batch.id, 3, Outcome.SUCCEEDED, attempts=1)

        story = explain_row(ledger, batch.id, 2)

        assert [("queued", "running")] == [(t.source, t.target) for t in story.transitions]

    def test_older_transitions_beyond_the_cap_are_counted(
        self, ledger: Ledger, clock: Clock
    ) -> None:
        """With more transitions than shown, the newest are kept and the older ones counted."""
        batch_id = self._history(ledger, clock)

        story = explain_row(ledger, batch_id, 2, shown=2)

        assert ([("retrying", "retrying"), ("retrying", "succeeded")], 2) == (
            [(t.source, t.target) for t in story.transitions],
            story.hidden,
        )

    def test_a_capped_scan_says_earlier_events_may_be_missing(
        self, ledger: Ledger, clock: Clock
    ) -> None:
        """A scan that stops at its cap before the row's first transition says so."""
        batch_id = self._history(ledger, clock)

        story = explain_row(ledger, batch_id, 2, scan_cap=2)

        assert (2, "only the batch's newest 2 events were read") == (
            len(story.transitions),
            story.gap,
        )

    def test_a_trimmed_stream_says_earlier_events_may_be_missing(
        self, ledger: Ledger, clock: Clock, redis_client: redis.Redis
    ) -> None:
        """When the capped stream dropped the row's first transitions, the story says so."""
        batch_id = self._history(ledger, clock)
        redis_client.xtrim(ledger.keys.events(batch_id), maxlen=1, approximate=False)

        story = explain_row(ledger, batch_id, 2)

        assert (1, "older events of the batch were trimmed from its capped events stream") == (
            len(story.transitions),
            story.gap,
        )


class TestFailedRow:
    def test_failed_row_tells_the_answer_and_what_to_do(self, ledger: Ledger, clock: Clock) -> None:
        """A row Stripe refused for good has its error, request id and the failures step."""
        batch = opened(ledger)
        step(ledger, clock, batch.id, Outcome.RUNNING)
        step(
            ledger,
            clock,
            batch.id,
            Outcome.FAILED,
            attempts=1,
            retryable=False,
            error_type="invalid_request_error",
            error_code="parameter_unknown",
            error_message="Received unknown parameter: metadata[x]",
            request_id="req_bad",
        )

        story = explain_row(ledger, batch.id, 2)

        assert (
            Outcome.FAILED,
            "invalid_request_error",
            "parameter_unknown",
            "Received unknown parameter: metadata[x]",
            "req_bad",
            f"vsbatch failures {batch.id} > fix.csv",
        ) == (
            story.outcome,
            story.error_type,
            story.error_code,
            story.error_message,
            story.request_id,
            story.next_step.command if story.next_step else None,
        )

    def test_retryable_failure_suggests_retry(self, ledger: Ledger, clock: Clock) -> None:
        """A failure that may succeed on a second try suggests ``vsbatch retry``."""
        batch = opened(ledger)
        step(ledger, clock, batch.id, Outcome.RUNNING)
        step(
            ledger,
            clock,
            batch.id,
            Outcome.FAILED,
            attempts=3,
            retryable=True,
            error_type="api_connection_error",
            unsettled=True,
        )

        story = explain_row(ledger, batch.id, 2)

        assert f"vsbatch retry {batch.id}" == (story.next_step.command if story.next_step else "")


class TestRejectedRow:
    def test_rejected_row_tells_its_cells_and_reason(self, ledger: Ledger) -> None:
        """A row rejected at intake has no update: its story gives the cells and the reason."""
        cells = {"id": "vs_bad", "metadata.k": "v"}
        bad = NewRow(2, "vs_bad", None, None, rejection=("id", "bad id"), extra={"raw": cells})
        batch = opened(ledger, bad)

        story = explain_row(ledger, batch.id, 2)

        assert (Outcome.REJECTED, cells, "id: bad id", 0) == (
            story.outcome,
            story.cells,
            story.why,
            story.attempts,
        )


class TestReadBacks:
    def test_confirmed_by_read_back_is_told(self, ledger: Ledger, clock: Clock) -> None:
        """A row that succeeded on a read-back says so in its story."""
        batch = opened(ledger)
        step(ledger, clock, batch.id, Outcome.RUNNING)
        step(
            ledger,
            clock,
            batch.id,
            Outcome.SUCCEEDED,
            attempts=2,
            reason="confirmed_by_read_back",
            session_status="requires_input",
        )

        story = explain_row(ledger, batch.id, 2)

        assert "the change was there" in (story.read_back or ""), story.read_back

    def test_skip_for_status_tells_the_read_back(self, ledger: Ledger, clock: Clock) -> None:
        """A 400 followed by a read-back finding the session not updatable is told."""
        batch = opened(ledger)
        step(ledger, clock, batch.id, Outcome.RUNNING)
        step(
            ledger,
            clock,
            batch.id,
            Outcome.SKIPPED,
            attempts=1,
            reason=SkipReason.NOT_UPDATABLE.value,
            session_status="verified",
            error_type="invalid_request_error",
        )

        story = explain_row(ledger, batch.id, 2)

        assert "verified" in (story.read_back or ""), story.read_back


class TestNotFound:
    def test_unknown_row_names_the_batch_rows(self, ledger: Ledger) -> None:
        """An unknown row raises NotFoundError naming the batch's row numbers."""
        batch = opened(ledger)

        with pytest.raises(NotFoundError) as raised:
            explain_row(ledger, batch.id, 99)

        assert f"batch {batch.id} has no row 99 (its rows are 2 to 2)" == str(raised.value)

    def test_unknown_batch(self, ledger: Ledger) -> None:
        """An unknown batch raises NotFoundError."""
        with pytest.raises(NotFoundError):
            explain_row(ledger, "b_nope", 2)

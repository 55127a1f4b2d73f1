"""CSV -> ledger -> real Celery worker processes -> emulator, and back to a reconcilable report."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Workers, wait_done
from tests.helpers import metadata_csv
from vsbatch.bootstrap import Deps
from vsbatch.intake.csv_reader import read_updates
from vsbatch.intake.csv_writers import write_failures
from vsbatch.intake.stage import submit_csv
from vsbatch.model.row import Outcome
from vsbatch.worker.tasks import enqueue_chunk


def _ids(emulator: Any, n: int, **seed: Any) -> list[str]:
    return list(emulator.seed(count=n, **seed))


def _outcomes(deps: Deps, batch_id: str) -> dict[int, tuple[str, str | None]]:
    return {r.row: (r.outcome.value, r.reason) for r in deps.ledger.iter_rows(batch_id)}


class TestEndToEnd:
    def test_every_row_gets_its_true_outcome(
        self, emulator: Any, workers: Workers, producer: Deps, tmp_path: Path
    ) -> None:
        """Valid, invalid and duplicate rows against sessions in every status end as expected."""
        # Given sessions in every status and a CSV touching each of them
        ready = _ids(emulator, 2)
        processing = _ids(emulator, 1, status="processing")
        verified = _ids(emulator, 1, status="verified")
        canceled = _ids(emulator, 1, status="canceled")
        redacted = _ids(emulator, 1, status="verified", redacted=True)
        missing = "vs_" + "M" * 24
        csv = tmp_path / "in.csv"
        csv.write_text(
            "id,metadata.tier,options.document.require_matching_selfie\n"
            f"{ready[0]},gold,true\n"  # row 2
            f"{ready[1]},silver,\n"  # row 3
            f"{processing[0]},x,\n"  # row 4
            f"{verified[0]},x,\n"  # row 5
            f"{canceled[0]},x,\n"  # row 6
            f"{redacted[0]},x,\n"  # row 7
            f"{missing},x,\n"  # row 8
            f"{ready[0]},again,\n"  # row 9: duplicate of row 2
            "not-an-id,x,\n"  # row 10
            f"{ready[1]},,maybe\n"  # row 11: bad boolean (and a duplicate)
            f"{ready[1]},,\n",  # row 12: empty update
            encoding="utf-8",
        )
        workers.start()

        # When the file is submitted and worked
        batch = submit_csv(producer, csv, enqueue_chunk)
        batch = wait_done(producer, batch.id)

        # Then every row has its own outcome
        outcomes = _outcomes(producer, batch.id)
        assert ("succeeded", None) == outcomes[2]
        assert ("succeeded", None) == outcomes[3]
        for row in (4, 5, 6, 7):
            assert ("skipped", "not_requires_input") == outcomes[row]
        assert "failed" == outcomes[8][0]
        assert ("rejected", "duplicate of row 2") == outcomes[9]
        assert "rejected" == outcomes[10][0]
        assert "rejected" == outcomes[11][0]
        assert "rejected" == outcomes[12][0]
        assert 11 == batch.total == batch.terminal
        assert {ready[0]: 1, ready[1]: 1} == emulator.stats()["applied"]
        record = producer.ledger.get_row(batch.id, 8)
        assert (False, "InvalidRequestError", "resource_missing") == (
            record.retryable,
            record.error_type,
            record.error_code,
        )

    def test_failures_csv_resubmitted_fixes_what_can_be_fixed(
        self, emulator: Any, workers: Workers, producer: Deps, tmp_path: Path
    ) -> None:
        """A failures file is accepted as it is; rows whose cause is gone then succeed."""
        # Given a batch where one row failed (unknown session) and one was rejected
        late = "vs_" + "L" * 24
        ok = _ids(emulator, 1)[0]
        csv = tmp_path / "in.csv"
        csv.write_text(f"id,metadata.a\n{ok},1\n{late},2\nvs_bad!,3\n", encoding="utf-8")
        workers.start()
        first = wait_done(producer, submit_csv(producer, csv, enqueue_chunk).id)
        assert 1 == first.counts[Outcome.FAILED]

        # When the missing session now exists and the failures file is re-submitted as it is
        emulator.seed(count=1, ids=[late])
        buffer = io.StringIO()
        write_failures(
            producer.ledger.iter_rows(first.id, [Outcome.FAILED, Outcome.REJECTED]), buffer
        )
        failures = tmp_path / "failures.csv"
        failures.write_text(buffer.getvalue(), encoding="utf-8")
        assert 2 == sum(1 for _ in read_updates(failures))
        second = wait_done(producer, submit_csv(producer, failures, enqueue_chunk).id)

        # Then the fixable row succeeds, the invalid one is rejected again
        outcomes = sorted(o for o, _ in _outcomes(producer, second.id).values())
        assert ["rejected", "succeeded"] == outcomes
        assert 1 == emulator.stats()["applied"][late]


class TestRateLimiter:
    def test_fleet_stays_under_stripes_limit_at_the_configured_rate(
        self, emulator: Any, workers: Workers, producer: Deps, tmp_path: Path
    ) -> None:
        """Two workers at 40/s against a 50/s emulator: no rate_limit 429, rate within 5 %."""
        rows = 240
        emulator.configure(rate_limit=50)
        ids = _ids(emulator, rows)
        csv = tmp_path / "in.csv"
        metadata_csv(csv, ids)
        for _ in range(2):
            workers.start(concurrency=8, VSBATCH_RATE_LIMIT="40")
        time.sleep(3)  # both workers up, so the measured rate is the fleet's, not one's

        batch = wait_done(producer, submit_csv(producer, csv, enqueue_chunk).id)

        assert rows == batch.counts[Outcome.SUCCEEDED]
        assert 0 == emulator.stats()["rate_limited"]
        # The fleet's sending rate: rows finished between the first and the last completion
        # (the ramp-up of picking up the first messages is not the limiter's doing).
        finished = sorted(r.updated_at for r in producer.ledger.iter_rows(batch.id))
        measured = (rows - 1) / (finished[-1] - finished[0])
        assert abs(measured - 40) / 40 < 0.05, measured


class TestRetryAndCancel:
    def test_retry_resubmits_retryable_failures_as_a_child(
        self, emulator: Any, workers: Workers, producer: Deps, tmp_path: Path
    ) -> None:
        """Rows failed by an outage succeed in the child batch once Stripe is back."""
        from vsbatch.ops.reconcile import retry_batch

        # Given a batch that ran during an outage longer than the workers' retry window
        ids = _ids(emulator, 5)
        emulator.configure(fail_503_rate=1.0)
        csv = tmp_path / "in.csv"
        metadata_csv(csv, ids)
        workers.start(VSBATCH_MAX_ATTEMPTS="2", VSBATCH_RETRY_MAX_SECONDS="1")
        first = wait_done(producer, submit_csv(producer, csv, enqueue_chunk).id)
        assert 5 == first.counts[Outcome.FAILED]
        assert all(r.retryable for r in producer.ledger.iter_rows(first.id))

        # When Stripe is back and the batch is retried
        emulator.configure(fail_503_rate=0.0)
        retried = retry_batch(producer, first.id, enqueue_chunk)
        assert retried is not None
        child = wait_done(producer, retried.id)

        # Then every row succeeds once, in a child batch that points at its parent
        assert (5, first.id) == (child.counts[Outcome.SUCCEEDED], child.parent_id)
        assert dict.fromkeys(ids, 1) == emulator.stats()["applied"]

    def test_cancel_skips_the_rows_not_yet_sent(
        self, emulator: Any, workers: Workers, producer: Deps, tmp_path: Path
    ) -> None:
        """After cancel, unsent rows end skipped (batch_canceled) and the counts add up."""
        emulator.configure(latency_ms=150)
        ids = _ids(emulator, 60)
        csv = tmp_path / "in.csv"
        metadata_csv(csv, ids)
        workers.start(concurrency=2)
        batch = submit_csv(producer, csv, enqueue_chunk)

        def cancel_early(info: Any) -> None:
            if info.terminal >= 4 and info.state.value != "canceled":
                producer.ledger.cancel(batch.id)

        done = wait_done(producer, batch.id, poll=cancel_early)

        skipped = [r for r in producer.ledger.iter_rows(batch.id) if r.reason == "batch_canceled"]
        assert len(skipped) > 30
        succeeded = done.counts[Outcome.SUCCEEDED]
        assert 60 == succeeded + len(skipped)
        assert succeeded == emulator.stats()["applied_total"]

"""Resuming a batch: only unfinished rows are enqueued again, with the batch's own options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import metadata_csv
from vsbatch.bootstrap import Deps
from vsbatch.errors import InputError
from vsbatch.intake.stage import (
    open_and_enqueue,
    open_csv_batch,
    read_digest,
    resume,
    submit_csv,
    sweep_stalled,
)
from vsbatch.model.row import NewRow, Outcome
from vsbatch.worker.row_options import RowOptions


class Enqueued:
    """An ``Enqueue`` that keeps what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[int], RowOptions]] = []

    def __call__(self, batch_id: str, rows: list[int], options: RowOptions) -> None:
        self.calls.append((batch_id, list(rows), options))

    @property
    def rows(self) -> list[int]:
        return [row for _, rows, _ in self.calls for row in rows]


def write_csv(path: Path, ids: list[str]) -> Path:
    return metadata_csv(path, ids)


IDS = [f"vs_{n:024d}" for n in range(5)]


class TestResume:
    def test_enqueues_only_unfinished_rows_with_the_batch_options(
        self, deps: Deps, tmp_path: Path
    ) -> None:
        """Rows already final stay put; the others go out again with the stored options."""
        # Given an open batch of five rows submitted with read_first, two of them final
        options = RowOptions(read_first=True, lock_wait=1.5)
        batch = deps.ledger.create_batch(name="t", kind="csv", source="t")
        deps.ledger.add_rows(
            batch.id, [NewRow(r, IDS[r - 2], None, {"metadata": {"k": "v"}}) for r in range(2, 7)]
        )
        open_and_enqueue(deps, batch.id, Enqueued(), options)
        deps.ledger.transition(batch.id, 2, Outcome.SUCCEEDED)
        deps.ledger.transition(batch.id, 4, Outcome.FAILED, retryable=False)
        deps.ledger.transition(batch.id, 5, Outcome.RUNNING)

        # When it is resumed
        enqueued = Enqueued()
        info, count = resume(deps, batch.id, enqueued)

        # Then the three unfinished rows (one of them running) are enqueued again
        assert ([3, 5, 6], 3, info.id) == (enqueued.rows, count, batch.id)
        assert {options} == {opts for _, _, opts in enqueued.calls}

    @pytest.mark.parametrize("state", ["staging", "done", "canceled"])
    def test_refuses_a_batch_that_is_not_open(self, deps: Deps, state: str) -> None:
        """Only an open batch can be resumed; the message says why not."""
        batch = deps.ledger.create_batch(name="t", kind="csv", source="t")
        deps.ledger.add_rows(batch.id, [NewRow(2, IDS[0], None, {"metadata": {"k": "v"}})])
        if state != "staging":
            open_and_enqueue(deps, batch.id, Enqueued(), RowOptions())
        if state == "done":
            deps.ledger.transition(batch.id, 2, Outcome.SUCCEEDED)
        if state == "canceled":
            deps.ledger.cancel(batch.id)

        enqueued = Enqueued()
        with pytest.raises(InputError, match=f"batch {batch.id} "):
            resume(deps, batch.id, enqueued)
        assert [] == enqueued.calls


class TestOpenBatchOfAFile:
    def test_finds_the_open_batch_of_the_same_content(self, deps: Deps, tmp_path: Path) -> None:
        """Same bytes under another name: found; other account or other bytes: not."""
        first = submit_csv(deps, write_csv(tmp_path / "a.csv", IDS), Enqueued())
        copy = write_csv(tmp_path / "copy.csv", IDS)
        other = write_csv(tmp_path / "other.csv", IDS[:2])

        found: dict[str, Any] = {
            "copy": open_csv_batch(deps, read_digest(copy), None),
            "account": open_csv_batch(deps, read_digest(copy), "acct_1"),
            "other": open_csv_batch(deps, read_digest(other), None),
        }

        assert {"copy": first.id, "account": None, "other": None} == {
            k: v.id if v is not None else None for k, v in found.items()
        }

    def test_a_finished_batch_is_not_resumed(self, deps: Deps, tmp_path: Path) -> None:
        """Once every row is final, the same file makes a new batch."""
        path = write_csv(tmp_path / "a.csv", IDS[:1])
        batch = submit_csv(deps, path, Enqueued())
        deps.ledger.transition(batch.id, 2, Outcome.SUCCEEDED)

        assert open_csv_batch(deps, read_digest(path), None) is None


class TestSweepStalled:
    def test_resumes_an_open_batch_nobody_worked_on(self, deps: Deps, tmp_path: Path) -> None:
        """An open batch whose messages were lost is enqueued again, once per window."""
        # Given a batch whose messages never reached a worker, and a finished one
        lost = submit_csv(deps, write_csv(tmp_path / "a.csv", IDS[:3]), Enqueued())
        finished = submit_csv(deps, write_csv(tmp_path / "b.csv", IDS[3:4]), Enqueued())
        deps.ledger.transition(finished.id, 2, Outcome.SUCCEEDED)

        # When the sweeper runs twice in a row with a zero stall window
        enqueued = Enqueued()
        first = sweep_stalled(deps, enqueued, stall=0.0)
        second = sweep_stalled(deps, enqueued, stall=0.0)

        # Then the lost batch's rows went out once; the finished batch was left alone
        assert ([lost.id], [], [2, 3, 4]) == (first, second, enqueued.rows)

    def test_a_batch_a_worker_touched_recently_is_left_alone(
        self, deps: Deps, tmp_path: Path
    ) -> None:
        """Within the stall window of its last chunk, a batch is moving: nothing is sent."""
        batch = submit_csv(deps, write_csv(tmp_path / "a.csv", IDS), Enqueued())
        deps.ledger.touch(batch.id)
        enqueued = Enqueued()

        swept = sweep_stalled(deps, enqueued, stall=600.0)

        assert ([], []) == (swept, enqueued.calls)
        assert deps.ledger.get_batch(batch.id).touched_at is not None

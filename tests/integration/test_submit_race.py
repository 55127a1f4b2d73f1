"""Two submits of one file started together: exactly one batch is accepted, every time."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from vsbatch.bootstrap import Deps
from vsbatch.errors import BatchInProgressError
from vsbatch.intake.file_claim import claim_file
from vsbatch.intake.stage import SubmitOptions, join_or_submit, read_digest, submit_csv
from vsbatch.model.row import BatchInfo, BatchState
from vsbatch.worker.row_options import RowOptions

ROUNDS = 20


def _discard(batch_id: str, rows: list[int], options: RowOptions) -> None:
    """An ``Enqueue`` that drops the messages (no worker in these tests)."""


def _write(path: Path, tag: int, rows: int = 50) -> Path:
    ids = "".join(f"vs_{tag:04d}{n:020d},r2\n" for n in range(rows))
    path.write_text("id,metadata.race\n" + ids, encoding="utf-8")
    return path


def _race(call: Callable[[], BatchInfo]) -> list[BatchInfo | BaseException]:
    """Run ``call`` in two threads released together; what each returned or raised."""
    start = threading.Barrier(2)
    results: list[BatchInfo | BaseException] = []
    lock = threading.Lock()

    def one() -> None:
        start.wait()
        try:
            outcome: BatchInfo | BaseException = call()
        except BaseException as exc:  # the test inspects it
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


class TestSubmitRace:
    def test_two_submits_of_one_file_accept_exactly_one_batch(
        self, deps: Deps, tmp_path: Path
    ) -> None:
        """Each round, one submit opens a batch and the other is refused naming it."""
        for tag in range(ROUNDS):
            path = _write(tmp_path / f"r{tag}.csv", tag)

            results = _race(lambda path=path: submit_csv(deps, path, _discard))  # type: ignore[misc]

            batches = [r for r in results if isinstance(r, BatchInfo)]
            refused = [r for r in results if isinstance(r, BatchInProgressError)]
            assert (1, 1) == (len(batches), len(refused)), f"round {tag}: {results}"
            assert batches[0].id in str(refused[0])
            assert batches[0].id == refused[0].batch_id

    def test_a_refused_submit_leaves_no_batch_behind(self, deps: Deps, tmp_path: Path) -> None:
        """The refused submit's staged batch is discarded: only the accepted one is listed."""
        path = _write(tmp_path / "r.csv", 1)
        submit_csv(deps, path, _discard)

        try:
            submit_csv(deps, path, _discard)
        except BatchInProgressError:
            pass

        assert 1 == len(deps.ledger.list_batches())

    def test_an_ended_batch_does_not_block_the_same_file(self, deps: Deps, tmp_path: Path) -> None:
        """Once the batch of a file is canceled, the same file is accepted again."""
        path = _write(tmp_path / "r.csv", 2)
        first = submit_csv(deps, path, _discard)
        deps.ledger.cancel(first.id)

        second = submit_csv(deps, path, _discard)

        assert first.id != second.id and second.state is BatchState.OPEN

    def test_new_bypasses_the_claim(self, deps: Deps, tmp_path: Path) -> None:
        """``new=True`` submits the file again while its first batch is open, by design."""
        path = _write(tmp_path / "r.csv", 3)
        first = submit_csv(deps, path, _discard)

        second = submit_csv(deps, path, _discard, SubmitOptions(new=True))

        assert first.id != second.id

    def test_another_account_is_another_claim(self, deps: Deps, tmp_path: Path) -> None:
        """The same file for another default account is a different batch."""
        path = _write(tmp_path / "r.csv", 4)
        first = submit_csv(deps, path, _discard)

        second = submit_csv(deps, path, _discard, SubmitOptions(account="acct_1"))

        assert first.id != second.id


class TestRunRace:
    def test_two_runs_of_one_file_share_one_batch(self, deps: Deps, tmp_path: Path) -> None:
        """Each round, two ``run``s of one file started together end up on the same batch."""
        for tag in range(ROUNDS):
            path = _write(tmp_path / f"r{tag}.csv", tag)

            results = _race(lambda path=path: join_or_submit(deps, path, _discard)[0])  # type: ignore[misc]

            ids = {r.id for r in results if isinstance(r, BatchInfo)}
            assert 1 == len(ids) and 2 == len(results), f"round {tag}: {results}"
            assert 1 == len(deps.ledger.list_batches(limit=1000)) - tag

    def test_run_waiting_on_a_killed_submit_submits_anew_once_it_is_canceled(
        self, deps: Deps, tmp_path: Path
    ) -> None:
        """A batch left staging by a killed submit holds the file; canceling it lets the
        waiting ``run`` submit the file as a new open batch."""
        path = _write(tmp_path / "r.csv", 5)
        dead = deps.ledger.create_batch(name="r", kind="csv", source="r")
        claim_file(deps.ledger, dead.id, read_digest(path), None)

        batch, rows = join_or_submit(
            deps, path, _discard, on_wait=lambda held: deps.ledger.cancel(held) and None
        )

        assert (None, BatchState.OPEN) == (rows, batch.state) and batch.id != dead.id

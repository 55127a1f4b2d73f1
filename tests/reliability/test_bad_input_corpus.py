"""The bad-CSV corpus through ``submit_csv`` on the real Redis: exact errors, nothing left behind.

A refused file leaves no batch, no ledger key and no message; a file with invalid rows gets
them recorded ``rejected`` with their column and reason, and only its valid rows are enqueued
and sent. The expected results are the corpus test's tables.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from typing import Any

import pytest
import redis

from tests.e2e.conftest import Workers, wait_done
from tests.unit.test_bad_csv_corpus import CORPUS, ID1, ID2, ID3, ID4, PARSED, REFUSED
from vsbatch.bootstrap import Deps
from vsbatch.errors import CsvFileError
from vsbatch.intake.csv_cells import RowError
from vsbatch.intake.stage import SubmitOptions, submit_csv
from vsbatch.model.row import Outcome
from vsbatch.worker.celery_app import QUEUE
from vsbatch.worker.tasks import enqueue_chunk


def _leftovers(deps: Deps, client: redis.Redis) -> dict[str, Any]:
    """Everything a refused file could have left: messages, keys (the global seq aside), batches."""
    keys = sorted(k.decode() for k in client.scan_iter("*") if k != b"vsbatch:seq")
    return {
        "messages": client.lrange(QUEUE, 0, -1),
        "keys": keys,
        "batches": deps.ledger.list_batches(),
    }


NOTHING_LEFT: dict[str, Any] = {"messages": [], "keys": [], "batches": []}


def _enqueued_rows(client: redis.Redis) -> list[int]:
    """Row numbers named by the chunk messages waiting on the Celery queue."""
    rows: list[int] = []
    for raw in client.lrange(QUEUE, 0, -1):
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        rows.extend(args[1])
    return sorted(rows)


def _expected(name: str) -> tuple[list[tuple[int, str | None, str]], list[int]]:
    """(row, column, reason) of the rows the ledger rejects, and the rows it queues.

    Rows the parser refuses are rejected with its error; a valid row whose session an earlier
    valid row of the file already claimed is rejected by the ledger as a duplicate.
    """
    rejected: list[tuple[int, str | None, str]] = []
    queued: list[int] = []
    first: dict[str, int] = {}
    for row, session_id, result in PARSED[name]:
        if isinstance(result, RowError):
            rejected.append((row, result.column, result.reason))
        elif session_id in first:
            rejected.append((row, "id", f"duplicate of row {first[session_id]}"))
        else:
            first[session_id] = row
            queued.append(row)
    return rejected, queued


class TestRefusedFiles:
    @pytest.mark.parametrize("name", sorted(REFUSED))
    def test_refused_file_leaves_nothing_behind(
        self, name: str, producer: Deps, redis_client: redis.Redis
    ) -> None:
        """A refused file raises its exact error and leaves no batch, key or message."""
        expected = REFUSED[name]

        with pytest.raises(CsvFileError) as caught:
            submit_csv(producer, CORPUS / name, enqueue_chunk)

        error = caught.value
        assert (expected.message, expected.row, expected.column) == (
            str(error),
            error.row,
            error.column,
        )
        assert NOTHING_LEFT == _leftovers(producer, redis_client)

    def test_strict_refuses_a_file_with_a_rejected_row(
        self, producer: Deps, redis_client: redis.Redis
    ) -> None:
        """With --strict, one invalid row refuses the whole file and nothing is left behind."""
        name = "bad_booleans.csv"
        rejected, _queued = _expected(name)
        shown = "; ".join(
            f"row {row}, column {column}: {reason}" for row, column, reason in rejected
        )

        with pytest.raises(CsvFileError) as caught:
            submit_csv(producer, CORPUS / name, enqueue_chunk, SubmitOptions(strict=True))

        assert f"--strict: 2 invalid row(s); nothing was enqueued. {shown}" == str(caught.value)
        assert NOTHING_LEFT == _leftovers(producer, redis_client)


class TestRejectedRows:
    @pytest.mark.parametrize("name", sorted(PARSED))
    def test_rejected_rows_are_recorded_and_not_enqueued(
        self, name: str, producer: Deps, redis_client: redis.Redis, emulator: Any
    ) -> None:
        """Invalid rows end rejected with their exact column and reason; valid rows are queued."""
        rejected, queued = _expected(name)

        batch = submit_csv(producer, CORPUS / name, enqueue_chunk)

        rows = list(producer.ledger.iter_rows(batch.id))
        actual = [(r.row, r.column, r.reason) for r in rows if r.outcome is Outcome.REJECTED]
        assert rejected == actual
        assert queued == [r.row for r in rows if r.outcome is Outcome.QUEUED]
        assert queued == _enqueued_rows(redis_client)
        assert (len(rows), len(rejected)) == (batch.total, batch.counts[Outcome.REJECTED])
        assert 0 == emulator.stats()["updates"]

    def test_only_valid_rows_reach_stripe(
        self, producer: Deps, workers: Workers, emulator: Any
    ) -> None:
        """Worked by a real worker, every parsed file sends its valid rows and no rejected one."""
        # Given the corpus's sessions and a worker
        emulator.configure(rate_limit=0)
        emulator.seed(ids=[ID1, ID2, ID3, ID4])
        workers.start(concurrency=4)

        # When every parsed file is submitted and worked to the end
        sent: Counter[str] = Counter()
        for name in sorted(PARSED):
            batch = submit_csv(producer, CORPUS / name, enqueue_chunk)
            wait_done(producer, batch.id, timeout=30)
            _rejected, queued = _expected(name)
            sessions = {row: sid for row, sid, _ in PARSED[name]}
            sent.update(sessions[row] for row in queued)

        # Then Stripe saw exactly the valid rows, each applied once
        stats = emulator.stats()
        assert (sum(sent.values()), dict(sent)) == (stats["updates"], stats["applied"])

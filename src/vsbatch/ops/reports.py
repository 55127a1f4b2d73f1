"""Reconciliation outputs: the summary table, the JSON report and the CSV exports."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, Protocol, TextIO

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from vsbatch.model.row import TERMINAL, BatchInfo, Outcome, RowRecord
from vsbatch.ops.reasons import reason, why
from vsbatch.ops.terminal_text import safe, visible


class RowSource(Protocol):
    """Where a report reads a batch's rows: the Redis ledger, or the results store once the
    batch has left Redis (``vsbatch.results.store.ResultsStore``), redacted or not."""

    def iter_rows(
        self, batch_id: str, outcomes: Iterable[Outcome] | None = None
    ) -> Iterator[RowRecord]: ...

    def now(self) -> float: ...


OUTCOME_ORDER = [
    Outcome.SUCCEEDED,
    Outcome.SKIPPED,
    Outcome.FAILED,
    Outcome.REJECTED,
    Outcome.QUEUED,
    Outcome.RUNNING,
    Outcome.RETRYING,
]


def counts_dict(batch: BatchInfo) -> dict[str, int]:
    """Every outcome with its count (zeros included), in a stable order."""
    return {o.value: batch.counts.get(o, 0) for o in OUTCOME_ORDER}


def batch_dict(batch: BatchInfo) -> dict[str, Any]:
    """The batch as JSON-ready data."""
    return {
        "id": batch.id,
        "name": batch.name,
        "kind": batch.kind,
        "source": batch.source,
        "digest": batch.digest,
        "account": batch.account,
        "state": batch.state.value,
        "parent_id": batch.parent_id,
        "created_at": batch.created_at,
        "finished_at": batch.finished_at,
        "total": batch.total,
        "terminal": batch.terminal,
        "counts": counts_dict(batch),
        "options": batch.options,
    }


def row_dict(record: RowRecord) -> dict[str, Any]:
    """One row as JSON-ready data."""
    # Here: the update's models (pydantic) are for reports, not for ``status``'s counters.
    from vsbatch.model.update import key_of

    return {
        "row": record.row,
        "id": record.session_id,
        "account": record.account,
        "outcome": record.outcome.value,
        "reason": reason(record),
        "column": record.column,
        "attempts": record.attempts,
        "retryable": record.retryable,
        "error_type": record.error_type,
        "error_code": record.error_code,
        "error_message": record.error_message,
        "request_id": record.request_id,
        "session_status": record.session_status,
        "idempotency_key": key_of(record),
        "update": record.params,
    }


def write_json(ledger: RowSource, batch: BatchInfo, out: TextIO) -> None:
    """The JSON report, streamed row by row (memory does not grow with the batch)."""
    head = batch_dict(batch)
    out.write(json.dumps(head)[:-1] + ', "rows": [')
    for index, record in enumerate(ledger.iter_rows(batch.id)):
        out.write(("," if index else "") + "\n  " + json.dumps(row_dict(record)))
    out.write("\n]}\n")


def summary_table(batch: BatchInfo) -> Group:
    """The batch's name and state on a line, then its counters as a small table.

    The line is never wrapped (a table's title was folded to the table's width: a long name
    came out over several lines, in a pipe too); a terminal shows it as it shows any long line.
    """
    title = Text(f"{visible(batch.name)}: {batch.state.value}", no_wrap=True, overflow="ignore")
    table = Table(caption=safe(batch.id))
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    for outcome, count in counts_dict(batch).items():
        if count or Outcome(outcome) in TERMINAL:
            table.add_row(outcome, str(count))
    table.add_row("total", str(batch.total), style="bold")
    return Group(title, table)


def problem_rows(ledger: RowSource, batch_id: str) -> Iterator[RowRecord]:
    """Rows a person must look at: failed, rejected, and skipped."""
    yield from ledger.iter_rows(batch_id, [Outcome.FAILED, Outcome.REJECTED, Outcome.SKIPPED])


def print_table(console: Console, ledger: RowSource, batch: BatchInfo, limit: int = 50) -> None:
    """The summary, then the first rows that were not simply applied (data printed as text)."""
    console.print(summary_table(batch))
    table = Table(title="rows not applied")
    table.add_column("row", justify="right", no_wrap=True)
    table.add_column("id", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    table.add_column("why", overflow="fold")
    shown = 0
    for record in problem_rows(ledger, batch.id):
        if shown == limit:
            table.add_row("...", "", "", "see --format csv, json or html")
            break
        table.add_row(
            str(record.row), safe(record.session_id), record.outcome.value, safe(why(record))
        )
        shown += 1
    if shown:
        console.print(table)

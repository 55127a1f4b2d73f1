"""What to do after a batch: the commands that make sense for its outcome.

One place decides them, so ``run``, ``retry``, ``resume`` and the HTML report agree: ``retry``
only when a failure may succeed on a second try, ``failures`` when rows need a person (failed
for good, or rejected), and the full report always.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vsbatch.model.row import BatchInfo, Outcome, RowRecord
from vsbatch.ops.terminal_text import safe
from vsbatch.store.ledger import Ledger

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "Step",
    "count_retryable",
    "exit_code",
    "is_retryable",
    "next_steps",
    "nothing_to_retry",
    "print_next_steps",
    "retryable_rows",
]


@dataclass(frozen=True)
class Step:
    """One suggested command and why it makes sense now."""

    command: str
    why: str


def is_retryable(record: RowRecord) -> bool:
    """Whether ``vsbatch retry`` re-submits this row: a failure that may succeed next time."""
    return record.outcome is Outcome.FAILED and bool(record.retryable) and record.params is not None


def retryable_rows(ledger: Ledger, batch_id: str) -> Iterator[RowRecord]:
    """The batch's failed rows that ``vsbatch retry`` re-submits, in row order."""
    return (r for r in ledger.iter_rows(batch_id, [Outcome.FAILED]) if is_retryable(r))


def count_retryable(ledger: Ledger, batch_id: str) -> int:
    """How many of the batch's failed rows ``vsbatch retry`` would re-submit."""
    return sum(1 for _ in retryable_rows(ledger, batch_id))


def exit_code(batch: BatchInfo) -> int:
    """The exit code a finished batch gives: 1 if a row failed, else 2 if a row was rejected."""
    if batch.counts.get(Outcome.FAILED, 0):
        return 1
    return 2 if batch.counts.get(Outcome.REJECTED, 0) else 0


def next_steps(batch: BatchInfo, retryable: int, *, report_format: str = "html") -> list[Step]:
    """The commands that make sense after ``batch``, most useful first.

    Args:
        batch: The batch, with its counters.
        retryable: Its failed rows that a retry re-submits (:func:`count_retryable`).
        report_format: The report format to suggest (``html`` on a terminal; the HTML page
            itself suggests ``csv``).

    Returns:
        ``retry`` when something is retryable, ``failures`` when rows failed for good or were
        rejected, then the report.
    """
    bid = batch.id
    steps = []
    if retryable:
        steps.append(Step(f"vsbatch retry {bid}", f"{retryable} failure(s) may succeed now"))
    needs_fixing = batch.counts.get(Outcome.FAILED, 0) - retryable
    needs_fixing += batch.counts.get(Outcome.REJECTED, 0)
    if needs_fixing > 0:
        steps.append(
            Step(
                f"vsbatch failures {bid} > fix.csv",
                f"{needs_fixing} row(s) to fix by hand, in the input format, to run again",
            )
        )
    steps.append(
        Step(
            f"vsbatch report {bid} --format {report_format} -o report.{report_format}",
            "every row's outcome and why",
        )
    )
    return steps


def nothing_to_retry(batch: BatchInfo) -> str:
    """The line ``vsbatch retry`` prints for a batch with no retryable failure."""
    failed = batch.counts.get(Outcome.FAILED, 0)
    line = f"nothing to retry: batch {batch.id} has no retryable failures"
    if failed:
        line += f" ({failed} failed non-retryable: see 'vsbatch failures {batch.id}')"
    return line


def print_next_steps(console: Console, ledger: Ledger, batch: BatchInfo) -> None:
    """Print ``next:`` and the commands that make sense after ``batch``, one a line."""
    steps = next_steps(batch, count_retryable(ledger, batch.id))
    width = max(len(step.command) for step in steps)
    console.print("next:", highlight=False)
    for step in steps:
        console.print(f"  {safe(step.command.ljust(width))}  # {safe(step.why)}", highlight=False)

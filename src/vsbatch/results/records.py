"""What one SQL row of the results store holds, both ways: ledger values <-> column values.

The ledger's :class:`~vsbatch.model.row.RowRecord` and :class:`~vsbatch.model.row.BatchInfo`
go in and come out unchanged (times as epoch seconds in Python, UTC timestamps in SQL), so
the report writers read an archived batch as they read one in Redis.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vsbatch.model.row import BatchInfo, BatchState, Outcome, RowRecord

__all__ = [
    "ArchivedBatch",
    "HistoryEntry",
    "ReasonCount",
    "batch_values",
    "epoch",
    "record_of",
    "row_values",
    "utc",
]


@dataclass(frozen=True)
class ArchivedBatch:
    """A batch as the results store has it.

    Attributes:
        info: The batch and its counters, as the ledger last reported them.
        archived_rows: Rows of the batch in the store.
        archived_at: When the archiver last wrote the batch (epoch seconds).
        complete: The batch had ended (done or canceled) and every one of its rows is here.
    """

    info: BatchInfo
    archived_rows: int
    archived_at: float
    complete: bool


@dataclass(frozen=True)
class ReasonCount:
    """How many rows of one outcome ended for one reason (``reason`` "" for none)."""

    batch_id: str
    outcome: str
    reason: str
    rows: int


@dataclass(frozen=True)
class HistoryEntry:
    """One archived update of a session, with the batch it came in."""

    record: RowRecord
    batch_name: str
    batch_kind: str
    batch_created_at: float


def utc(seconds: float | None) -> datetime | None:
    """Epoch seconds as an aware UTC datetime (None stays None; 0 is no time)."""
    if not seconds:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC)


def epoch(value: datetime | None) -> float:
    """A stored time as epoch seconds (SQLite gives naive datetimes: they are UTC)."""
    if value is None:
        return 0.0
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return round(value.timestamp(), 3)


def batch_values(batch: BatchInfo, *, archived_at: float) -> dict[str, Any]:
    """The ``vsbatch_batches`` columns of a batch (``archived_rows``/``complete`` left out)."""
    return {
        "batch_id": batch.id,
        "name": batch.name,
        "kind": batch.kind,
        "source": batch.source,
        "digest": batch.digest,
        "account": batch.account,
        "parent_id": batch.parent_id,
        "state": batch.state.value,
        "total": batch.total,
        "counts": {o.value: n for o, n in batch.counts.items()},
        "options": batch.options,
        "created_at": utc(batch.created_at),
        "finished_at": utc(batch.finished_at),
        "archived_at": utc(archived_at),
    }


def row_values(record: RowRecord, idempotency_key: str | None) -> dict[str, Any]:
    """The ``vsbatch_rows`` columns of a row record.

    Args:
        record: The ledger's record.
        idempotency_key: The key the row was sent under (derived by the caller, who may
            import the update models; stored whole so SQL users can search by it).
    """
    return {
        "batch_id": record.batch_id,
        "row_num": record.row,
        "session_id": record.session_id,
        "account": record.account,
        "outcome": record.outcome.value,
        "reason": record.reason,
        "column_name": record.column,
        "attempts": record.attempts,
        "retryable": record.retryable,
        "error_type": record.error_type,
        "error_code": record.error_code,
        "error_message": record.error_message,
        "request_id": record.request_id,
        "session_status": record.session_status,
        "idempotency_key": idempotency_key,
        "seq": record.seq,
        "params": record.params,
        "extra": record.extra or None,
        "created_at": utc(record.created_at),
        "updated_at": utc(record.updated_at),
    }


def record_of(row: Any) -> RowRecord:
    """A ``vsbatch_rows`` result row as the ledger's record."""
    return RowRecord(
        batch_id=row.batch_id,
        row=row.row_num,
        session_id=row.session_id,
        account=row.account,
        params=row.params,
        idempotency_key=row.idempotency_key,
        seq=row.seq,
        outcome=Outcome(row.outcome),
        reason=row.reason,
        column=row.column_name,
        attempts=row.attempts,
        retryable=row.retryable,
        error_type=row.error_type,
        error_code=row.error_code,
        error_message=row.error_message,
        request_id=row.request_id,
        session_status=row.session_status,
        created_at=epoch(row.created_at),
        updated_at=epoch(row.updated_at),
        extra=dict(row.extra or {}),
    )


def archived_batch_of(row: Any) -> ArchivedBatch:
    """A ``vsbatch_batches`` result row as an :class:`ArchivedBatch`."""
    counts = {o: int(row.counts.get(o.value, 0)) for o in Outcome}
    info = BatchInfo(
        id=row.batch_id,
        name=row.name,
        kind=row.kind,
        source=row.source,
        digest=row.digest,
        account=row.account,
        created_at=epoch(row.created_at),
        state=BatchState(row.state),
        total=row.total,
        counts=counts,
        parent_id=row.parent_id,
        finished_at=epoch(row.finished_at) or None,
        options=dict(row.options or {}),
    )
    return ArchivedBatch(
        info=info,
        archived_rows=row.archived_rows,
        archived_at=epoch(row.archived_at),
        complete=bool(row.complete),
    )

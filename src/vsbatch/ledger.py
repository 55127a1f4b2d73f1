"""The ledger: vsbatch's results backend in Redis (batches, row records, outcomes, counters).

INTERFACE STUB: the signatures and docstrings below are the contract the pipeline codes
against; the bodies are being written. Keep every name and signature.

Layout (all keys under ``<prefix>:``, default prefix ``vsbatch``; names live in ``Keys``):

- ``b:{bid}``          hash: the batch's fields (id, name, kind, source, digest, account,
                        created_at, finished_at, state, total, parent_id)
- ``b:{bid}:counts``   hash: outcome -> number of rows in it (moves only on real transitions)
- ``b:{bid}:rows``     hash: row number -> JSON row record (compact; see ``RowRecord``)
- ``b:{bid}:sessions`` hash: "{account}:{session_id}" -> first row number (duplicate detection)
- ``b:{bid}:events``   stream: one entry per transition (history; capped approximately)
- ``batches``          sorted set: batch id by created_at
- ``seq``              counter: global submission sequence (per-session order)
- ``applied:{account}:{session_id}``  string: highest ``seq`` applied to that session

Transitions run in one Lua script: check the row's current outcome, apply the patch, move the
counters, refresh the TTL, append the event, mark the batch done when terminal == total. A row
already in a terminal outcome never moves again, so a redelivered message moves nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import redis


class Outcome(StrEnum):
    """Where a row stands. The first four are terminal."""

    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"
    FAILED = "failed"
    REJECTED = "rejected"
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"


TERMINAL: frozenset[Outcome] = frozenset(
    {Outcome.SUCCEEDED, Outcome.SKIPPED, Outcome.FAILED, Outcome.REJECTED}
)


class SkipReason(StrEnum):
    """Why a row was skipped."""

    NOT_UPDATABLE = "not_requires_input"  # the session's status does not allow updates
    UNCHANGED = "unchanged"  # the session already is as the row asks
    SUPERSEDED = "superseded"  # a newer update of the same session was applied first
    CANCELED = "batch_canceled"  # the batch was canceled before the row ran


class BatchState(StrEnum):
    """A batch's life: staging (rows being written, nothing enqueued) -> open -> done."""

    STAGING = "staging"
    OPEN = "open"
    DONE = "done"
    CANCELED = "canceled"


@dataclass(frozen=True)
class NewRow:
    """One input row as the producer hands it to the ledger.

    ``params`` is the canonical Stripe-shaped update (``SessionUpdate.to_params()``), or None
    when the row was rejected; then ``rejection`` holds ``(column, reason)``.
    """

    row: int
    session_id: str
    account: str | None
    params: dict[str, Any] | None
    idempotency_key: str | None = None
    rejection: tuple[str | None, str] | None = None


@dataclass
class RowRecord:
    """The ledger's record of one input row."""

    batch_id: str
    row: int
    session_id: str
    account: str | None
    params: dict[str, Any] | None
    idempotency_key: str | None
    seq: int
    outcome: Outcome
    reason: str | None = None  # skip reason, or rejection reason
    column: str | None = None  # rejected rows: the offending column
    attempts: int = 0
    retryable: bool | None = None  # failed rows: may a retry succeed?
    error_type: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    session_status: str | None = None  # the session's status after the update
    created_at: float = 0.0
    updated_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_terminal(self) -> bool:
        """True once the row has its final outcome."""
        return self.outcome in TERMINAL


@dataclass
class BatchInfo:
    """A batch and its counters."""

    id: str
    name: str
    kind: str  # "csv", "migration", "app", "retry"
    source: str  # file name, migration name, ...
    digest: str | None
    account: str | None
    created_at: float
    state: BatchState
    total: int
    counts: dict[Outcome, int]
    parent_id: str | None = None
    finished_at: float | None = None

    @property
    def terminal(self) -> int:
        """Rows with a final outcome."""
        return sum(n for o, n in self.counts.items() if o in TERMINAL)


class Ledger:
    """Batches and their row records in Redis, with atomic idempotent transitions."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "vsbatch",
        retention_seconds: float = 30 * 86400,
        clock: Callable[[], float] = time.time,
    ) -> None:
        raise NotImplementedError

    # -- producer side ---------------------------------------------------------------------
    def create_batch(
        self,
        *,
        name: str,
        kind: str,
        source: str,
        digest: str | None = None,
        account: str | None = None,
        parent_id: str | None = None,
    ) -> BatchInfo:
        """Create a batch in state STAGING (its rows are written, nothing is enqueued yet)."""
        raise NotImplementedError

    def add_rows(self, batch_id: str, rows: Iterable[NewRow]) -> int:
        """Write rows (pipelined, in chunks): valid rows QUEUED, rejected rows REJECTED.

        A second row for the same (account, session) in the batch becomes REJECTED with
        column ``id`` and reason "duplicate of row N". Each valid row gets the next global
        ``seq``. Returns the number of rows written. Memory stays bounded for any input size.
        """
        raise NotImplementedError

    def open_batch(self, batch_id: str) -> BatchInfo:
        """STAGING -> OPEN (or DONE at once when every row is already terminal)."""
        raise NotImplementedError

    def discard_batch(self, batch_id: str) -> None:
        """Delete a STAGING batch and all its keys (a refused file leaves nothing behind)."""
        raise NotImplementedError

    def pending_chunks(self, batch_id: str, size: int) -> Iterator[list[int]]:
        """Row numbers of the batch's non-terminal rows, in order, ``size`` at a time."""
        raise NotImplementedError

    # -- worker side -----------------------------------------------------------------------
    def get_row(self, batch_id: str, row: int) -> RowRecord:
        """One row's record (NotFoundError if absent)."""
        raise NotImplementedError

    def transition(self, batch_id: str, row: int, to: Outcome, **fields: Any) -> bool:
        """Move a non-terminal row to ``to`` and set ``fields`` (RowRecord attribute names).

        Atomic (one Lua script). Returns False, changing nothing, when the row is already
        terminal. ``attempts`` in fields replaces the count. Counters move once per real
        transition; moving to the same non-terminal outcome just updates the fields.
        """
        raise NotImplementedError

    def cancel(self, batch_id: str) -> BatchInfo:
        """Mark the batch CANCELED; workers then skip its remaining rows (batch_canceled)."""
        raise NotImplementedError

    def next_seq(self) -> int:
        """A new global submission sequence number (for application updates)."""
        raise NotImplementedError

    def mark_applied(self, account: str | None, session_id: str, seq: int) -> None:
        """Record that update ``seq`` was applied to the session (keeps the maximum)."""
        raise NotImplementedError

    def applied_seq(self, account: str | None, session_id: str) -> int:
        """The highest ``seq`` applied to the session, 0 if none."""
        raise NotImplementedError

    # -- readers ---------------------------------------------------------------------------
    def get_batch(self, batch_id: str) -> BatchInfo:
        """The batch and its counters (NotFoundError if unknown or expired)."""
        raise NotImplementedError

    def list_batches(self, limit: int = 50) -> list[BatchInfo]:
        """The newest batches first."""
        raise NotImplementedError

    def iter_rows(
        self, batch_id: str, outcomes: Iterable[Outcome] | None = None
    ) -> Iterator[RowRecord]:
        """Every row record in row order (HSCAN in pages, sorted), optionally filtered."""
        raise NotImplementedError

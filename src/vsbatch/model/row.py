"""A row's and a batch's values as the ledger keeps them: outcomes, skip reasons, batch states,
new rows, row records and batch info."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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
    # None: the row's key is derived (``key_of``); set only when it is not (a retried row
    # keeps its original's key), so the ledger does not store 100 bytes per row it can compute.
    idempotency_key: str | None = None
    rejection: tuple[str | None, str] | None = None
    extra: dict[str, Any] | None = None  # e.g. a rejected row's input cells, for ``failures``


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
    # An attempt under the row's key ended unknown (a gateway 5xx, a timeout): that request
    # may still land, so later rounds must not end the row on an answer that says "not run".
    unsettled: bool = False
    created_at: float = 0.0
    updated_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_terminal(self) -> bool:
        """True once the row has its final outcome."""
        return self.outcome in TERMINAL

    @property
    def place_in_line(self) -> int:
        """The row's place in its session's submission order: its ``seq``, or for a retried
        row the place of the update it retries (``extra["parent_seq"]``)."""
        return int(self.extra.get("parent_seq", self.seq))


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
    options: dict[str, Any] = field(default_factory=dict)  # how its rows are processed
    touched_at: float | None = None  # when a worker last started on one of its chunks

    @property
    def terminal(self) -> int:
        """Rows with a final outcome."""
        return sum(n for o, n in self.counts.items() if o in TERMINAL)

"""What the dashboard reads and does, behind two small interfaces, and their ledger versions.

:class:`Reads` is every read a page makes; :class:`Actions` the two buttons. The pages and
routes know only these, so session history can come from the SQL results store
(``vsbatch.results``) once it is there, and unit tests can give an in-memory twin.

:class:`LedgerReads` reads the Redis ledger through the same code as the CLI: the batches and
rows of ``status``/``report`` (redacted as reports are), the live counters, rates and account
limits of ``status --watch`` (:class:`~vsbatch.ops.live_view.LiveReader`). :class:`LedgerActions`
calls what ``vsbatch retry`` and ``vsbatch cancel`` call.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from vsbatch.errors import NotFoundError
from vsbatch.model.row import BatchInfo, Outcome, RowRecord
from vsbatch.ops.reasons import reason, why

if TYPE_CHECKING:
    from vsbatch.bootstrap import Deps
    from vsbatch.ops.reports import RowSource
    from vsbatch.results.store import ResultsStore

__all__ = [
    "Actions",
    "Feed",
    "FoundBatch",
    "LedgerActions",
    "LedgerReads",
    "Reads",
    "RetryResult",
    "RowFilter",
]

BATCHES_LISTED = 50  # newest batches on the index page (as ``status``)


@dataclass(frozen=True)
class RowFilter:
    """Which rows of a batch to show: all of them when every field is empty.

    Args:
        outcome: Only rows with this outcome.
        reason: Only rows whose reason (or the phrase the page shows, message included)
            contains this text.
        session: Only rows whose session id contains this text.
    """

    outcome: Outcome | None = None
    reason: str = ""
    session: str = ""

    def keeps(self, record: RowRecord) -> bool:
        """Whether ``record`` passes the filter."""
        if self.outcome is not None and record.outcome is not self.outcome:
            return False
        if self.reason and self.reason not in reason(record) and self.reason not in why(record):
            return False
        return not self.session or self.session in record.session_id


@dataclass(frozen=True)
class FoundBatch:
    """A batch, and whether it came from the results store (it has left Redis: its counters
    are final, and retry and cancel, which work on the ledger, cannot act on it)."""

    info: BatchInfo
    archived: bool = False


@dataclass(frozen=True)
class RetryResult:
    """What a retry started: the child batch's id, or the line saying there was nothing."""

    child_id: str | None
    message: str


class Feed(Protocol):
    """One live stream's source of counters: each call reads them once more."""

    def __call__(self) -> dict[str, Any]: ...


class Reads(Protocol):
    """Every read the dashboard makes."""

    @property
    def history_source(self) -> str:
        """Where session history comes from, as the page names it."""
        ...

    def batches(self) -> list[BatchInfo]:
        """The newest batches first."""
        ...

    def archived_batches(self) -> list[BatchInfo]:
        """The newest batches of the results store that have left Redis, newest first."""
        ...

    def batch(self, batch_id: str) -> FoundBatch:
        """One batch, from Redis or else the results store (NotFoundError if in neither)."""
        ...

    def rows(self, batch_id: str, wanted: RowFilter, limit: int) -> list[RowRecord]:
        """The first ``limit`` rows of the batch that pass ``wanted``, in row order."""
        ...

    def session_history(self, session_id: str, limit: int) -> list[RowRecord]:
        """The rows of the session in every batch known, oldest update first."""
        ...

    def failures(self, batch_id: str) -> Iterator[RowRecord]:
        """The batch's failed and rejected rows, as ``vsbatch failures`` writes them."""
        ...

    def feed(self) -> Feed:
        """A new source of live counters (one per open stream: rates need its history)."""
        ...


class Actions(Protocol):
    """The dashboard's buttons."""

    def retry(self, batch_id: str) -> RetryResult:
        """Re-submit the batch's retryable failures as a child batch, for the workers."""
        ...

    def cancel(self, batch_id: str) -> str:
        """Cancel the batch; the line saying what became of its rows."""
        ...


class LedgerReads:
    """:class:`Reads` on the Redis ledger of ``deps``, and the results store for the batches
    that have left Redis (as ``vsbatch report`` and ``failures`` read them) and for history.

    Args:
        deps: The process's dependencies (ledger, limiter, settings).
        store: The SQL results store; None reads Redis only.
        clock: Monotonic seconds, for the rates (injected for tests).
    """

    def __init__(
        self,
        deps: Deps,
        store: ResultsStore | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        from vsbatch.web.history import SessionHistory

        self._deps = deps
        self._store = store
        self._clock = clock
        self._pii = deps.settings.redact_pii
        self._history = SessionHistory(deps.ledger, store, pii=self._pii)

    @property
    def history_source(self) -> str:
        return self._history.source

    def batches(self) -> list[BatchInfo]:
        return self._deps.ledger.list_batches(BATCHES_LISTED)

    def archived_batches(self) -> list[BatchInfo]:
        if self._store is None:
            return []
        in_redis = {b.id for b in self.batches()}
        archived = (a.info for a in self._store.list_batches(BATCHES_LISTED))
        return [b for b in archived if b.id not in in_redis]

    def batch(self, batch_id: str) -> FoundBatch:
        return self._source(batch_id)[1]

    def _source(self, batch_id: str) -> tuple[RowSource, FoundBatch]:
        """The batch and where its rows are, redacted as reports are (keys always, PII when
        the settings ask): the ledger while it has the batch, else the results store, as
        ``vsbatch report`` and ``failures`` read it (``cli.results.rows_of``, which opens a
        store per call; this process holds one open; both ask ``ResultsStore.left_redis``).

        Raises:
            NotFoundError: Neither has the batch.
        """
        from vsbatch.ops.redacted_ledger import RedactedRows

        source: RowSource = self._deps.ledger
        try:
            info = self._deps.ledger.get_batch(batch_id)
        except NotFoundError:
            if self._store is None:
                raise
            source, info = self._store, self._store.left_redis(batch_id)
        found = FoundBatch(info, archived=source is not self._deps.ledger)
        return RedactedRows(source, pii=self._pii), found

    def rows(self, batch_id: str, wanted: RowFilter, limit: int) -> list[RowRecord]:
        source, _ = self._source(batch_id)
        outcomes = None if wanted.outcome is None else [wanted.outcome]
        kept = (r for r in source.iter_rows(batch_id, outcomes) if wanted.keeps(r))
        return list(itertools.islice(kept, limit))

    def session_history(self, session_id: str, limit: int) -> list[RowRecord]:
        return self._history.rows(session_id, limit)

    def failures(self, batch_id: str) -> Iterator[RowRecord]:
        source, _ = self._source(batch_id)  # NotFoundError before any byte is sent
        return source.iter_rows(batch_id, [Outcome.FAILED, Outcome.REJECTED])

    def feed(self) -> Feed:
        from vsbatch.web.events import LiveFeed

        return LiveFeed(self._deps, clock=self._clock)


class LedgerActions:
    """:class:`Actions` through the code of ``vsbatch retry`` and ``vsbatch cancel``.

    Args:
        deps: The process's dependencies (Celery configured for them: rows are enqueued).
    """

    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    def retry(self, batch_id: str) -> RetryResult:
        from vsbatch.ops.next_steps import nothing_to_retry
        from vsbatch.ops.reconcile import retry_batch
        from vsbatch.worker.tasks import enqueue_chunk

        child = retry_batch(self._deps, batch_id, enqueue_chunk)
        if child is None:
            return RetryResult(None, nothing_to_retry(self._deps.ledger.get_batch(batch_id)))
        return RetryResult(child.id, f"batch {child.id}: {child.total} rows to retry")

    def cancel(self, batch_id: str) -> str:
        from vsbatch.ops.cancellation import cancel_batch

        return cancel_batch(self._deps.ledger, batch_id)[1]

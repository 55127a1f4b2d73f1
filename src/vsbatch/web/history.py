"""A session's history for the dashboard: its rows in the Redis ledger and in the SQL store.

Batches live in Redis for ``ledger_retention_days``; the results store
(:class:`~vsbatch.results.store.ResultsStore`) keeps finished rows for good. A session's page
shows both: archived rows, and rows of batches still in Redis (the newest
:data:`LEDGER_BATCHES`), the Redis copy winning when a row is in both (it may have moved on
since it was archived). Without a store (it could not be opened) the page says it shows Redis
only. Rows come out redacted as reports are (keys always, PII when the settings ask).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vsbatch.errors import NotFoundError
from vsbatch.ops.redaction import redact_record

if TYPE_CHECKING:
    from vsbatch.model.row import RowRecord
    from vsbatch.results.store import ResultsStore
    from vsbatch.store.ledger import Ledger

__all__ = ["LEDGER_BATCHES", "SessionHistory"]

LEDGER_BATCHES = 50  # newest batches of the ledger whose rows are looked through


class SessionHistory:
    """The updates of one session across batches, oldest first.

    Args:
        ledger: The Redis ledger.
        store: The results store, or None (Redis only).
        pii: Hide emails and phone numbers too.
    """

    def __init__(self, ledger: Ledger, store: ResultsStore | None, *, pii: bool) -> None:
        self._ledger = ledger
        self._store = store
        self._pii = pii

    @property
    def source(self) -> str:
        """Where the rows come from, as the page names it."""
        redis = f"the Redis ledger (its newest {LEDGER_BATCHES} batches)"
        if self._store is None:
            return redis + " only: the results store could not be opened"
        return f"{redis} and the results store"

    def rows(self, session_id: str, limit: int) -> list[RowRecord]:
        """At most ``limit`` updates of the session (the oldest kept), oldest first."""
        found: dict[tuple[str, int], RowRecord] = {}
        if self._store is not None:
            for entry in self._store.session_history(session_id, limit=limit):
                found[(entry.record.batch_id, entry.record.row)] = entry.record
        for record in self._ledger_rows(session_id):
            found[(record.batch_id, record.row)] = record
        ordered = sorted(found.values(), key=lambda r: (r.seq, r.created_at, r.batch_id, r.row))
        return [redact_record(r, pii=self._pii) for r in ordered[:limit]]

    def _ledger_rows(self, session_id: str) -> list[RowRecord]:
        rows: list[RowRecord] = []
        for batch in self._ledger.list_batches(LEDGER_BATCHES):
            try:
                rows += [r for r in self._ledger.iter_rows(batch.id) if r.session_id == session_id]
            except NotFoundError:  # expired between the listing and the read
                continue
        return rows

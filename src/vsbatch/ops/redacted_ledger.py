"""The read-only views report writers get: rows come out redacted.

:class:`RedactedRows` wraps any row source (the ledger, or the results store once a batch has
left Redis); :class:`RedactedLedger` is the ledger itself, seen through the same filter.

Apart from :mod:`vsbatch.ops.redaction` (which the logging setup of every command imports)
because it subclasses the ledger, whose module imports redis-py.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

from vsbatch.model.row import Outcome, RowRecord
from vsbatch.model.update import key_of
from vsbatch.ops.redaction import redact_record
from vsbatch.ops.reports import RowSource
from vsbatch.store.ledger import Ledger

__all__ = ["RedactedLedger", "RedactedRows"]


def _redacted(record: RowRecord, *, pii: bool) -> RowRecord:
    """``record`` redacted, its idempotency key pinned first: a key the ledger does not
    store is derived from the update, and derived from the redacted one it would be a key
    that was never sent."""
    if record.params is not None and record.idempotency_key is None:
        record = replace(record, idempotency_key=key_of(record))
    return redact_record(record, pii=pii)


class RedactedRows:
    """A row source whose rows come out redacted (API keys always, PII when asked)."""

    def __init__(self, inner: RowSource, *, pii: bool) -> None:
        self.inner = inner
        self.pii = pii

    def iter_rows(
        self, batch_id: str, outcomes: Iterable[Outcome] | None = None
    ) -> Iterator[RowRecord]:
        """The wrapped source's rows, redacted."""
        for record in self.inner.iter_rows(batch_id, outcomes):
            yield _redacted(record, pii=self.pii)

    def now(self) -> float:
        """The wrapped source's clock."""
        return self.inner.now()


class RedactedLedger(Ledger):
    """A view of a ledger whose rows come out redacted; what report writers are given.

    It shares the wrapped ledger's client and scripts (nothing is copied from Redis) and
    changes only :meth:`iter_rows` and :meth:`get_row`.
    """

    def __init__(self, inner: Ledger, *, pii: bool) -> None:
        # Deliberately not Ledger.__init__: this is the same ledger, seen through a filter.
        self.__dict__.update(inner.__dict__)
        self.pii = pii

    def iter_rows(
        self, batch_id: str, outcomes: Iterable[Outcome] | None = None
    ) -> Iterator[RowRecord]:
        """The wrapped ledger's rows, redacted."""
        for record in super().iter_rows(batch_id, outcomes):
            yield _redacted(record, pii=self.pii)

    def get_row(self, batch_id: str, row: int) -> RowRecord:
        """One row, redacted."""
        return _redacted(super().get_row(batch_id, row), pii=self.pii)

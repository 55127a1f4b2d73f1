"""The read-only view of a ledger that report writers get: rows come out redacted.

Apart from :mod:`vsbatch.ops.redaction` (which the logging setup of every command imports)
because it subclasses the ledger, whose module imports redis-py.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from vsbatch.model.row import Outcome, RowRecord
from vsbatch.ops.redaction import redact_record
from vsbatch.store.ledger import Ledger

__all__ = ["RedactedLedger"]


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
            yield redact_record(record, pii=self.pii)

    def get_row(self, batch_id: str, row: int) -> RowRecord:
        """One row, redacted."""
        return redact_record(super().get_row(batch_id, row), pii=self.pii)

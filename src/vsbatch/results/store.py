"""The results store: finished batches and rows in SQL, for reconciliation months later.

:class:`ResultsStore` is the one door to the SQL database (SQLite by default, PostgreSQL with
``VSBATCH_RESULTS_URL``): the archiver writes through :meth:`ResultsStore.upsert_rows`, and
``vsbatch query``, the reports (once a batch has left Redis) and the web dashboard read
through the other methods. Writes are idempotent upserts keyed by ``(batch_id, row_num)``:
writing a row twice leaves one row, so the archiver may redo any part of its work.

Reads return the ledger's own values (:class:`~vsbatch.model.row.RowRecord`,
:class:`~vsbatch.model.row.BatchInfo`), so code that shows a batch from Redis shows an
archived one the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import ColumnElement

from vsbatch.errors import NotFoundError
from vsbatch.model.row import TERMINAL, BatchInfo, BatchState, Outcome, RowRecord
from vsbatch.results.engine import open_engine
from vsbatch.results.records import (
    ArchivedBatch,
    HistoryEntry,
    ReasonCount,
    archived_batch_of,
    batch_values,
    epoch,
    record_of,
    row_values,
)
from vsbatch.results.schema import BATCHES, ROWS

__all__ = ["ArchivedBatch", "HistoryEntry", "ReasonCount", "ResultsStore", "in_neither"]

WRITE_BLOCK = 500  # rows per INSERT ... ON CONFLICT (SQLite allows 32766 parameters)
READ_BLOCK = 1000  # rows per page of iter_rows
FINAL_STATES = (BatchState.DONE, BatchState.CANCELED)
KeyOf = Callable[[RowRecord], "str | None"]

# The row's short reason, as :func:`vsbatch.ops.reasons.reason` computes it (and the views).
REASON: ColumnElement[str] = func.coalesce(
    func.nullif(ROWS.c.reason, ""), ROWS.c.error_code, ROWS.c.error_type, ""
)


def _own_key(record: RowRecord) -> str | None:
    return record.idempotency_key


def in_neither(batch_id: str) -> NotFoundError:
    """The error for a batch that neither Redis nor the results store has."""
    return NotFoundError(
        f"no batch {batch_id} in Redis (unknown or expired) nor in the results store"
    )


class ResultsStore:
    """Archived batches and their finished rows in a SQL database.

    Args:
        engine: An engine on a migrated database (:meth:`open` builds one from a URL).
        clock: Wall-clock seconds, for ``archived_at``.
    """

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self._clock = clock

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> ResultsStore:
        """A store on ``url``, its schema migrated to the newest.

        Raises:
            ConfigError: Bad URL, or a database that cannot be reached (one line).
        """
        return cls(open_engine(url, migrate=migrate))

    def close(self) -> None:
        """Close the engine's connections."""
        self.engine.dispose()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ----------------------------------------------------------------------------
    def upsert_rows(
        self,
        batch: BatchInfo,
        records: Iterable[RowRecord],
        *,
        key_of: KeyOf = _own_key,
        complete: bool = False,
    ) -> int:
        """Write the batch and its finished rows; rows already here are overwritten.

        Each block of :data:`WRITE_BLOCK` rows is one transaction: a crash loses at most the
        block in flight, and writing everything again leaves every row exactly once.

        Args:
            batch: The batch as the ledger reports it now.
            records: Its rows; unfinished ones (queued, running, retrying) are left out.
            key_of: The Idempotency-Key of a row (the ledger stores only keys it cannot derive).
            complete: Every row of the batch is in ``records`` and the batch has ended: the
                store marks it ``complete`` (the archiver then reads it no more).

        Returns:
            The number of rows written.
        """
        self._upsert_batch(batch)
        finished = (r for r in records if r.outcome in TERMINAL)
        written = 0
        while block := [row_values(r, key_of(r)) for r in islice(finished, WRITE_BLOCK)]:
            with self.engine.begin() as conn:
                conn.execute(self._upsert(ROWS, ["batch_id", "row_num"], block[0]), block)
            written += len(block)
        self._count_rows(batch.id, complete=complete and batch.state in FINAL_STATES)
        return written

    def _upsert_batch(self, batch: BatchInfo) -> None:
        values = batch_values(batch, archived_at=self._clock())
        values.update(archived_rows=0, complete=False)
        with self.engine.begin() as conn:
            stmt = self._upsert(BATCHES, ["batch_id"], values, keep=("archived_rows", "complete"))
            conn.execute(stmt, values)

    def _count_rows(self, batch_id: str, *, complete: bool) -> None:
        rows = select(func.count()).where(ROWS.c.batch_id == batch_id).scalar_subquery()
        values: dict[str, Any] = {"archived_rows": rows}
        if complete:
            values["complete"] = True
        with self.engine.begin() as conn:
            conn.execute(update(BATCHES).where(BATCHES.c.batch_id == batch_id).values(values))

    def _upsert(
        self, table: Any, keys: list[str], sample: dict[str, Any], keep: tuple[str, ...] = ()
    ) -> Any:
        """INSERT ... ON CONFLICT (keys) DO UPDATE of every other column but ``keep``."""
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(table)
        changed = {c: stmt.excluded[c] for c in sample if c not in keys and c not in keep}
        return stmt.on_conflict_do_update(index_elements=keys, set_=changed)

    # -- batches ---------------------------------------------------------------------------
    def list_batches(self, limit: int = 50, offset: int = 0) -> list[ArchivedBatch]:
        """Archived batches, newest first."""
        query = (
            select(BATCHES)
            .order_by(BATCHES.c.created_at.desc(), BATCHES.c.batch_id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as conn:
            return [archived_batch_of(row) for row in conn.execute(query)]

    def archived_batch(self, batch_id: str) -> ArchivedBatch:
        """One archived batch.

        Raises:
            NotFoundError: The batch is not in the store.
        """
        with self.engine.connect() as conn:
            row = conn.execute(select(BATCHES).where(BATCHES.c.batch_id == batch_id)).first()
        if row is None:
            raise NotFoundError(f"no batch {batch_id} in the results store")
        return archived_batch_of(row)

    def get_batch(self, batch_id: str) -> BatchInfo:
        """The archived batch as the ledger last reported it (NotFoundError if absent)."""
        return self.archived_batch(batch_id).info

    def left_redis(self, batch_id: str) -> BatchInfo:
        """A batch Redis no longer has, as archived (:meth:`get_batch`); NotFoundError saying
        that neither has it (:func:`in_neither`)."""
        try:
            return self.get_batch(batch_id)
        except NotFoundError:
            raise in_neither(batch_id) from None

    def count_batches(self) -> int:
        """How many batches the store holds."""
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(BATCHES)).scalar_one())

    def complete_batches(self, batch_ids: Iterable[str]) -> set[str]:
        """Those of ``batch_ids`` already archived whole (the archiver's checkpoint)."""
        wanted = list(batch_ids)
        if not wanted:
            return set()
        query = select(BATCHES.c.batch_id).where(
            BATCHES.c.batch_id.in_(wanted), BATCHES.c.complete.is_(True)
        )
        with self.engine.connect() as conn:
            return set(conn.execute(query).scalars())

    def batch_totals(self, batch_id: str) -> dict[str, int]:
        """Archived rows of the batch per outcome, every terminal outcome present (0 if none).

        Raises:
            NotFoundError: The batch is not in the store.
        """
        self.archived_batch(batch_id)
        query = (
            select(ROWS.c.outcome, func.count())
            .where(ROWS.c.batch_id == batch_id)
            .group_by(ROWS.c.outcome)
        )
        totals = {o.value: 0 for o in Outcome if o in TERMINAL}
        with self.engine.connect() as conn:
            totals.update({outcome: int(n) for outcome, n in conn.execute(query)})
        return totals

    def failures_by_reason(self, batch_id: str | None = None) -> list[ReasonCount]:
        """Rows not applied (failed, rejected, skipped) per batch, outcome and reason, the
        most frequent first; of one batch, or of every archived batch."""
        count = func.count().label("rows")
        query = select(ROWS.c.batch_id, ROWS.c.outcome, REASON.label("reason"), count).where(
            ROWS.c.outcome.in_([Outcome.FAILED, Outcome.REJECTED, Outcome.SKIPPED])
        )
        if batch_id is not None:
            query = query.where(ROWS.c.batch_id == batch_id)
        query = query.group_by(ROWS.c.batch_id, ROWS.c.outcome, REASON).order_by(
            count.desc(), ROWS.c.batch_id, ROWS.c.outcome, REASON
        )
        with self.engine.connect() as conn:
            return [ReasonCount(b, o, r, int(n)) for b, o, r, n in conn.execute(query)]

    # -- rows ------------------------------------------------------------------------------
    def batch_rows(
        self,
        batch_id: str,
        *,
        outcome: str | None = None,
        reason: str | None = None,
        session: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[RowRecord]:
        """A page of the batch's archived rows in row order, optionally filtered.

        Args:
            batch_id: The batch.
            outcome: Only rows of this outcome (``failed``...).
            reason: Only rows of this short reason (as reports give it: a skip or rejection
                reason, a Stripe error code, or an error class).
            session: Only rows of this session id.
            limit: At most this many rows.
            offset: Rows to pass over first.
        """
        query = self._filtered(select(ROWS), batch_id, outcome, reason, session)
        query = query.order_by(ROWS.c.row_num).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [record_of(row) for row in conn.execute(query)]

    def count_rows(
        self,
        batch_id: str,
        *,
        outcome: str | None = None,
        reason: str | None = None,
        session: str | None = None,
    ) -> int:
        """How many rows :meth:`batch_rows` would page over with these filters."""
        query = self._filtered(select(func.count()), batch_id, outcome, reason, session)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    @staticmethod
    def _filtered(
        query: Any, batch_id: str, outcome: str | None, reason: str | None, session: str | None
    ) -> Any:
        query = query.select_from(ROWS).where(ROWS.c.batch_id == batch_id)
        if outcome is not None:
            query = query.where(ROWS.c.outcome == outcome)
        if reason is not None:
            query = query.where(REASON == reason)
        if session is not None:
            query = query.where(ROWS.c.session_id == session)
        return query

    def iter_rows(
        self, batch_id: str, outcomes: Iterable[Outcome] | None = None
    ) -> Iterator[RowRecord]:
        """Every archived row of the batch in row order, optionally only those in
        ``outcomes``: the ledger's ``iter_rows``, read in pages (memory stays bounded).

        Raises:
            NotFoundError: The batch is not in the store.
        """
        self.archived_batch(batch_id)
        wanted = None if outcomes is None else [Outcome(o).value for o in outcomes]
        after = -1 << 31
        while True:
            query = select(ROWS).where(ROWS.c.batch_id == batch_id, ROWS.c.row_num > after)
            if wanted is not None:
                query = query.where(ROWS.c.outcome.in_(wanted))
            with self.engine.connect() as conn:
                page = list(conn.execute(query.order_by(ROWS.c.row_num).limit(READ_BLOCK)))
            yield from (record_of(row) for row in page)
            if len(page) < READ_BLOCK:
                return
            after = page[-1].row_num

    def session_history(self, session_id: str, *, limit: int = 500) -> list[HistoryEntry]:
        """Every archived update of one session (any account), oldest first.

        Args:
            session_id: The VerificationSession id (``vs_...``).
            limit: At most this many entries (the newest are dropped past it).
        """
        query = (
            select(ROWS, BATCHES.c.name, BATCHES.c.kind, BATCHES.c.created_at.label("b_created"))
            .join(BATCHES, BATCHES.c.batch_id == ROWS.c.batch_id)
            .where(ROWS.c.session_id == session_id)
            .order_by(ROWS.c.seq, ROWS.c.batch_id, ROWS.c.row_num)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                HistoryEntry(record_of(row), row.name, row.kind, epoch(row.b_created))
                for row in conn.execute(query)
            ]

    def now(self) -> float:
        """The store's wall clock (what an HTML report of an archived batch ends its axis on)."""
        return self._clock()

"""The archiver: copies finished rows from the Redis ledger into the results store.

At least once, never twice: rows are upserted by ``(batch_id, row_num)``, so a pass that dies
half way is simply run again. The checkpoint is the store's ``complete`` mark: a batch that
had ended (done or canceled) and whose rows were all written is never read from Redis again,
so a pass over a quiet ledger costs one sorted-set read and one SQL query per thousand batches.
Once a batch is archived whole its Redis keys may expire sooner
(``VSBATCH_ARCHIVED_RETENTION_DAYS``): the reports then read it from SQL.

Who runs it: ``vsbatch archive [BATCH] [--follow]``, ``run``/``resume``/``retry`` when their
batch ends, and every worker's heartbeat thread now and then (:class:`ArchiveDuty`), one worker
at a time (a Redis lock; two at once would only repeat each other's upserts).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from vsbatch.errors import NotFoundError
from vsbatch.model.row import BatchInfo, BatchState, RowRecord
from vsbatch.store.codec import as_text, batch_info

if TYPE_CHECKING:
    from vsbatch.config import Settings
    from vsbatch.results.store import ResultsStore
    from vsbatch.store.ledger import Ledger

__all__ = ["ArchiveDuty", "Archived", "Archiver"]

log = logging.getLogger(__name__)

FINAL = (BatchState.DONE, BatchState.CANCELED)
ID_BLOCK = 1000  # batch ids per checkpoint query
LOCK_SECONDS = 600  # the duty's lock outlives a crashed holder this long at most


@dataclass(frozen=True)
class Archived:
    """What one batch's archiving did: rows written, and whether the batch is now complete."""

    batch_id: str
    rows: int
    complete: bool


def _key_of(record: RowRecord) -> str | None:
    # The update models import pydantic: only the archiver's callers pay for them.
    from vsbatch.model.update import key_of

    return key_of(record)


class Archiver:
    """Copies batches from a ledger into a results store.

    Args:
        ledger: The Redis ledger to read (and whose archived batches' retention to shorten).
        store: The results store to write.
        archived_retention: Seconds a batch archived whole stays in Redis (None: unchanged).
    """

    def __init__(
        self, ledger: Ledger, store: ResultsStore, *, archived_retention: float | None = None
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.archived_retention = archived_retention

    def archive_batch(self, batch_id: str) -> Archived:
        """Upsert the batch and every finished row it has now (an open batch: those so far).

        Raises:
            NotFoundError: The batch is not in Redis (never was, or expired).
        """
        batch = self.ledger.get_batch(batch_id)
        whole = batch.state in FINAL and batch.terminal == batch.total
        rows = self.store.upsert_rows(
            batch, self.ledger.iter_rows(batch_id), key_of=_key_of, complete=whole
        )
        if whole and self.archived_retention is not None:
            self.ledger.shorten_retention(batch_id, self.archived_retention)
        return Archived(batch_id, rows, whole)

    def pending(self) -> Iterator[BatchInfo]:
        """Batches in Redis that have ended and are not archived whole yet, oldest first."""
        keys = self.ledger.keys
        for ids in self._id_blocks():
            done = self.store.complete_batches(ids)
            todo = [batch_id for batch_id in ids if batch_id not in done]
            pipe = self.ledger.client.pipeline(transaction=False)
            for batch_id in todo:  # one round trip for the block, not two per batch
                pipe.hgetall(keys.batch(batch_id))
                pipe.hgetall(keys.counts(batch_id))
            found = pipe.execute() if todo else []
            for raw, counts in zip(found[::2], found[1::2], strict=True):
                if not raw:  # expired since the id was listed
                    continue
                batch = batch_info(raw, counts)
                if batch.state in FINAL and batch.terminal == batch.total:
                    yield batch

    def _id_blocks(self) -> Iterator[list[str]]:
        client = self.ledger.client
        raw = cast(list[bytes], client.zrange(self.ledger.keys.batches, 0, -1))
        ids = [as_text(b) for b in raw]
        for start in range(0, len(ids), ID_BLOCK):
            yield ids[start : start + ID_BLOCK]

    def archive_finished(
        self, on_batch: Callable[[Archived], None] | None = None, stop: Callable[[], bool] = bool
    ) -> list[Archived]:
        """Archive every batch that has ended and is not archived whole yet.

        Args:
            on_batch: Called after each batch (the CLI prints a line).
            stop: Asked between batches; True ends the pass early.
        """
        done = []
        for batch in self.pending():
            if stop():
                break
            try:
                archived = self.archive_batch(batch.id)
            except NotFoundError:
                continue
            done.append(archived)
            if on_batch is not None:
                on_batch(archived)
        return done


def archiver_for(ledger: Ledger, store: ResultsStore, settings: Settings) -> Archiver:
    """An archiver with the settings' retention of archived batches."""
    retention = settings.archived_retention_days * 86400
    return Archiver(ledger, store, archived_retention=retention)


class ArchiveDuty:
    """A worker's share of archiving: a background pass now and then, one worker at a time.

    :meth:`poke` (from the heartbeat thread's sweep) starts a pass in a thread of its own,
    unless one is running here, so a long pass never delays the heartbeat; the pass runs only
    if this worker takes the fleet's archiver lock in Redis. A database that cannot be
    reached is one warning per pass; the next pass tries again.

    Args:
        ledger: The worker's ledger.
        settings: Where the results store is and how long archived batches stay in Redis.
    """

    def __init__(self, ledger: Ledger, settings: Settings) -> None:
        self.ledger = ledger
        self.settings = settings
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def poke(self) -> None:
        """Start a pass in the background unless one is running."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._pass, name="vsbatch-archiver", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask a running pass to end after its current batch, and wait for it a while."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the running pass (tests)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _pass(self) -> None:
        key = self.ledger.keys.archiver
        client = self.ledger.client
        token = uuid.uuid4().hex
        if not client.set(key, token, nx=True, ex=LOCK_SECONDS):
            return
        try:
            from vsbatch.results.store import ResultsStore

            with ResultsStore.open(self.settings.results_database_url) as store:
                done = archiver_for(self.ledger, store, self.settings).archive_finished(
                    stop=self._stop.is_set
                )
            for archived in done:
                log.info("batch %s: %d rows archived", archived.batch_id, archived.rows)
        except Exception as exc:  # this thread must not die on one error; the next pass retries
            log.warning("archiving to the results store failed: %s", exc)
        finally:
            if as_text(client.get(key) or b"") == token:  # not a later holder's lock
                client.delete(key)

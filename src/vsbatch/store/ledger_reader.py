"""Reading the ledger: batches, their counters and row records, in pages of bounded size.

:class:`LedgerReader` is the read-only half of :class:`vsbatch.store.ledger.Ledger`: what
``status``, ``report`` and ``failures`` need, and what the writer builds on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, cast

import redis

from vsbatch.errors import NotFoundError
from vsbatch.model.row import BatchInfo, Outcome, RowRecord
from vsbatch.store.codec import TERMINAL_NAMES, as_text, batch_info, decode_row
from vsbatch.store.keys import Keys
from vsbatch.store.scripts import lua_script

BLOCK = 1000  # rows per read page and per add_rows script call
UNFINISHED_BLOCK = 10_000  # row numbers unfinished.lua looks at per call (replies are runs)
PAGE_BYTES = 4 << 20  # readers page by size as well as by row numbers (page.lua)


class LedgerReader:
    """Reads of the ledger's batches and rows (see :class:`vsbatch.store.ledger.Ledger`).

    Args:
        client: A redis-py client (bytes or decoded responses both work).
        prefix: Namespace of every key.
    """

    def __init__(self, client: redis.Redis, *, prefix: str = "vsbatch") -> None:
        self._r = client
        self.keys = Keys(prefix)
        self._page = client.register_script(lua_script("page.lua"))
        self._order_gate = client.register_script(lua_script("order_gate.lua"))
        self._unfinished = client.register_script(lua_script("unfinished.lua"))

    @property
    def client(self) -> redis.Redis:
        """The Redis client the ledger reads and writes (for readers of other keys)."""
        return self._r

    def pending_chunks(self, batch_id: str, size: int) -> Iterator[list[int]]:
        """Row numbers of the batch's non-terminal rows, in order, ``size`` at a time."""
        if size < 1:
            raise ValueError("size must be at least 1")
        chunk: list[int] = []
        for row in self._unfinished_rows(batch_id):
            chunk.append(row)
            if len(chunk) == size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def _unfinished_rows(self, batch_id: str) -> Iterator[int]:
        """The batch's non-terminal row numbers in order, picked out by Redis
        (``unfinished.lua``) a block of row numbers at a time: only numbers cross the wire.

        A batch whose rows fill min_row..max_row and none of which is final (a file just
        staged without a rejected row) is that range, without a look at any row.
        """
        lo, hi, total, final = self._row_range(batch_id)
        if final == 0 and total == hi - lo + 1:
            yield from range(lo, hi + 1)
            return
        for start in range(lo, hi + 1, UNFINISHED_BLOCK):
            end = min(start + UNFINISHED_BLOCK - 1, hi)
            runs = cast(
                list[Any], self._unfinished(keys=[self.keys.rows(batch_id)], args=[start, end])
            )
            for first, last in zip(runs[::2], runs[1::2], strict=True):
                yield from range(int(first), int(last) + 1)

    def _row_range(self, batch_id: str) -> tuple[int, int, int, int]:
        """The batch's min_row, max_row (1, 0 when it has no rows), rows and final rows, read
        together; NotFoundError if the batch is unknown."""
        pipe = self._r.pipeline(transaction=True)
        pipe.hmget(self.keys.batch(batch_id), ["min_row", "max_row", "total"])
        pipe.hmget(self.keys.counts(batch_id), TERMINAL_NAMES)
        fields, counts = cast(list[list[bytes | None]], pipe.execute())
        if fields[2] is None:
            raise NotFoundError(f"no batch {batch_id} (unknown or expired)")
        final = sum(int(n or 0) for n in counts)
        if fields[0] is None or fields[1] is None:
            return 1, 0, 0, final
        return int(fields[0]), int(fields[1]), int(fields[2]), final

    def _scan(self, batch_id: str) -> Iterator[tuple[int, bytes | str]]:
        """(row, raw record) in row order: ``page.lua`` pages over min_row..max_row."""
        fields = cast(
            list[bytes | None],
            self._r.hmget(self.keys.batch(batch_id), ["min_row", "max_row", "total"]),
        )
        if fields[2] is None:
            raise NotFoundError(f"no batch {batch_id} (unknown or expired)")
        if fields[0] is None or fields[1] is None:
            return
        lo, hi, total = int(fields[0]), int(fields[1]), int(fields[2])
        seen = 0
        for start in range(lo, hi + 1, BLOCK):
            end = min(start + BLOCK - 1, hi)
            n = start
            while n <= end:  # a page ends early past PAGE_BYTES (records can be ~1 MiB)
                reply = cast(
                    list[Any],
                    self._page(keys=[self.keys.rows(batch_id)], args=[n, end, PAGE_BYTES]),
                )
                n = int(reply[0])
                for index in range(1, len(reply), 2):
                    seen += 1
                    yield int(reply[index]), reply[index + 1]
            if seen >= total:  # rows added to an open batch after we began are not awaited
                return

    def get_row(self, batch_id: str, row: int) -> RowRecord:
        """One row's record.

        Raises:
            NotFoundError: The batch or the row is unknown.
        """
        raw = cast(bytes | None, self._r.hget(self.keys.rows(batch_id), str(row)))
        if raw is None:
            raise NotFoundError(f"batch {batch_id} has no row {row}")
        return decode_row(batch_id, row, raw)

    def applied_seq(self, account: str | None, session_id: str) -> int:
        """The highest ``seq`` applied to the session, 0 if none."""
        value = cast(bytes | None, self._r.get(self.keys.applied(account, session_id)))
        return int(value) if value is not None else 0

    def get_batch(self, batch_id: str) -> BatchInfo:
        """The batch and its counters (NotFoundError if unknown or expired)."""
        pipe = self._r.pipeline(transaction=True)
        pipe.hgetall(self.keys.batch(batch_id))
        pipe.hgetall(self.keys.counts(batch_id))
        raw_batch, raw_counts = pipe.execute()
        if not raw_batch:
            raise NotFoundError(f"no batch {batch_id} (unknown or expired)")
        return batch_info(raw_batch, raw_counts)

    def list_batches(self, limit: int = 50) -> list[BatchInfo]:
        """The newest batches first (expired ones are left out)."""
        ids = cast(list[bytes], self._r.zrevrange(self.keys.batches, 0, limit - 1))
        pipe = self._r.pipeline(transaction=False)
        for bid in ids:
            pipe.hgetall(self.keys.batch(as_text(bid)))
            pipe.hgetall(self.keys.counts(as_text(bid)))
        found = pipe.execute()
        return [batch_info(b, c) for b, c in zip(found[::2], found[1::2], strict=True) if b]

    def iter_rows(
        self, batch_id: str, outcomes: Iterable[Outcome] | None = None
    ) -> Iterator[RowRecord]:
        """Every row record in row order, optionally only those in ``outcomes``.

        Pages over ``min_row..max_row``, 1000 row numbers or 4 MiB at a time, so memory
        stays bounded and nothing is sorted. Raises NotFoundError for an unknown batch.
        """
        wanted = None if outcomes is None else {Outcome(o).value for o in outcomes}
        for row, raw in self._scan(batch_id):
            record = decode_row(batch_id, row, raw)
            if wanted is None or record.outcome.value in wanted:
                yield record

    def older_pending(self, record: RowRecord) -> Outcome | None:
        """The outcome of an unfinished update of the row's session older than the row, if any.

        Per-session FIFO: a row may only be sent when no older row of its session is still
        in flight (queued, running or retrying) in a batch that is not STAGING. Members of
        the session's pending set whose row is gone (expired, discarded) or already terminal
        are removed on the way, so a lost row never blocks its session for good.
        """
        session = self.keys.session_field(record.account, record.session_id)
        found = self._order_gate(
            keys=[self.keys.pending(record.account, record.session_id)],
            args=[record.seq, self.keys.prefix, session, record.batch_id],
        )
        return Outcome(as_text(cast(bytes, found))) if found else None

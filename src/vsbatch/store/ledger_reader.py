"""Reading the ledger: batches, their counters and row records, in pages of bounded size.

:class:`LedgerReader` is the read-only half of :class:`vsbatch.store.ledger.Ledger`: what
``status``, ``report`` and ``failures`` need, and what the writer builds on. It reads through
any :class:`ReadClient`: redis-py's client, or :class:`vsbatch.store.resp.RespClient`, which
spares ``vsbatch status`` the import of redis-py.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Generic, Protocol, TypeVar, cast

from vsbatch.errors import NotFoundError
from vsbatch.model.row import BatchInfo, Outcome, RowRecord
from vsbatch.store.codec import as_text, batch_info, decode_row
from vsbatch.store.keys import Keys
from vsbatch.store.scripts import lua_script

BLOCK = 1000  # rows per read page and per add_rows script call
UNFINISHED_BLOCK = 10_000  # row numbers unfinished.lua looks at per call (replies are runs)
PAGE_BYTES = 4 << 20  # readers page by size as well as by row numbers (page.lua)


class ReadScript(Protocol):
    """A registered Lua script, called as redis-py's ``Script`` is."""

    def __call__(
        self, keys: Sequence[str] = ..., args: Iterable[str | bytes | int | float] = ...
    ) -> Any: ...


class ReadPipeline(Protocol):
    """The pipelined reads of the ledger's readers (``execute`` returns the replies)."""

    def hgetall(self, name: str, /) -> Any: ...
    def exists(self, *names: str) -> Any: ...
    def execute(self) -> list[Any]: ...


class ReadClient(Protocol):
    """What reading the ledger asks of a Redis client: redis-py's or ``resp.RespClient``."""

    def get(self, name: str, /) -> Any: ...
    def hget(self, name: str, key: str, /) -> Any: ...
    def hmget(self, name: str, keys: list[str], /) -> Any: ...
    def zrevrange(self, name: str, start: int, end: int, /) -> Any: ...
    def smembers(self, name: str, /) -> Any: ...
    def pipeline(self, transaction: bool = ...) -> ReadPipeline: ...
    def register_script(self, script: str, /) -> ReadScript: ...
    def close(self) -> None: ...


C = TypeVar("C", bound=ReadClient)


class LedgerReader(Generic[C]):
    """Reads of the ledger's batches and rows (see :class:`vsbatch.store.ledger.Ledger`).

    Args:
        client: A redis-py client (bytes or decoded responses both work), or any other
            :class:`ReadClient`.
        prefix: Namespace of every key.
    """

    def __init__(self, client: C, *, prefix: str = "vsbatch") -> None:
        self._r = client
        self.keys = Keys(prefix)
        self._page = client.register_script(lua_script("page.lua"))
        self._order_gate = client.register_script(lua_script("order_gate.lua"))
        self._unfinished = client.register_script(lua_script("unfinished.lua"))

    @property
    def client(self) -> C:
        """The Redis client the ledger reads and writes (for readers of other keys)."""
        return self._r

    def pending_rows(self, batch_id: str) -> Iterator[tuple[int, str | None]]:
        """(row, Stripe account) of the batch's non-terminal rows, in row order: picked out
        by Redis (``unfinished.lua``), a block of row numbers at a time, as runs of rows of
        one account, so no record crosses the wire."""
        lo, hi = self._row_range(batch_id)
        for start in range(lo, hi + 1, UNFINISHED_BLOCK):
            end = min(start + UNFINISHED_BLOCK - 1, hi)
            runs = cast(
                list[Any], self._unfinished(keys=[self.keys.rows(batch_id)], args=[start, end])
            )
            for index in range(0, len(runs), 3):
                account = as_text(runs[index + 2]) or None
                for row in range(int(runs[index]), int(runs[index + 1]) + 1):
                    yield row, account

    def _row_range(self, batch_id: str) -> tuple[int, int]:
        """The batch's min_row..max_row (1..0 when it has no rows); NotFoundError if unknown."""
        lo, hi, _ = self._bounds(batch_id)
        return lo, hi

    def _bounds(self, batch_id: str) -> tuple[int, int, int]:
        """min_row, max_row (1, 0 when it has no rows) and total; NotFoundError if unknown."""
        fields = cast(
            list[bytes | None],
            self._r.hmget(self.keys.batch(batch_id), ["min_row", "max_row", "total"]),
        )
        if fields[2] is None:
            raise NotFoundError(f"no batch {batch_id} (unknown or expired)")
        if fields[0] is None or fields[1] is None:
            return 1, 0, int(fields[2])
        return int(fields[0]), int(fields[1]), int(fields[2])

    def _scan(self, batch_id: str) -> Iterator[tuple[int, bytes | str]]:
        """(row, raw record) in row order: ``page.lua`` pages over min_row..max_row."""
        lo, hi, total = self._bounds(batch_id)
        if hi < lo:
            return
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

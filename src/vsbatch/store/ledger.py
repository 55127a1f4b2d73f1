"""The ledger: vsbatch's results backend in Redis (batches, row records, outcomes, counters).

It owns every row's record and outcome, the per-batch counters, batch states and the global
submission sequence (a row's two scripts, with the sessions' "applied" markers, are in
:mod:`vsbatch.store.row_lease`). Key names are in
:mod:`vsbatch.store.keys`, stored forms in :mod:`vsbatch.store.codec`, reads in
:mod:`vsbatch.store.ledger_reader`.

Every write refreshes the retention TTL of the keys it touches, in the same script; a STAGING
batch's keys get the much shorter staging TTL until the batch is opened. Row
numbers are the user's (header = row 1) and may have gaps; readers page over
``min_row..max_row`` in blocks, cut by size too (``page.lua``), so memory stays bounded and
rows come out in order.

A transition is one Lua script (``row_core.lua``); a terminal row never moves again, so a
redelivered message moves nothing, and a worker's writes are fenced by its session lock
(``Fence``), so a worker that lost the lock while paused moves nothing either.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

import redis

from vsbatch.errors import LockLostError, NotFoundError
from vsbatch.model.row import (
    BatchInfo,
    BatchState,
    NewRow,
    Outcome,
    SkipReason,
)
from vsbatch.store.codec import (
    DEFAULT_OUTCOME,
    ERROR_FIELDS,
    PATCHABLE,
    ROW_KEYS,
    as_text,
    compact_json,
    new_batch_id,
    outcome_name,
    script_error,
    stored_form,
)
from vsbatch.store.ledger_reader import BLOCK, LedgerReader
from vsbatch.store.locks import Fence
from vsbatch.store.scripts import lua_script
from vsbatch.store.staging import RowWriter

# The fence of the session lock this thread holds while it works on a row (``Ledger.fenced``).
_FENCE: ContextVar[Fence | None] = ContextVar("vsbatch_fence", default=None)


class Ledger(LedgerReader[redis.Redis]):
    """Batches and their row records in Redis, with atomic idempotent transitions (the reads
    are :class:`LedgerReader`'s).

    Args:
        client: A redis-py client (bytes or decoded responses both work).
        prefix: Namespace of every key.
        retention_seconds: TTL of every batch key, refreshed on each write
            (``Settings.ledger_retention_days * 86400``).
        clock: Wall-clock seconds, for created_at/updated_at/finished_at.
        events_maxlen: Approximate cap of each batch's event stream.
        staging_seconds: TTL of a STAGING batch's keys, refreshed by each ``add_rows``: a
            batch whose producer died, or whose writes Redis started refusing, vanishes
            that long after its last rows (opening it gives it ``retention_seconds``). A
            day: a sparse migration may list sessions for an hour before its first rows.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "vsbatch",
        retention_seconds: float = 30 * 86400,
        clock: Callable[[], float] = time.time,
        events_maxlen: int = 100_000,
        staging_seconds: float = 86400,
    ) -> None:
        super().__init__(client, prefix=prefix)
        self._ttl = max(1, int(retention_seconds))
        self._staging_ttl = max(1, min(self._ttl, int(staging_seconds)))
        self._clock = clock
        self._maxlen = events_maxlen
        self._add = client.register_script(lua_script("add_rows.lua"))
        self._transition = client.register_script(lua_script("transition.lua"))
        self._state = client.register_script(lua_script("batch_state.lua"))
        self._touch = client.register_script(lua_script("touch.lua"))
        self._cancel_rows = client.register_script(lua_script("cancel_rows.lua"))

    @property
    def retention_seconds(self) -> int:
        """TTL of a batch's keys, refreshed on each write."""
        return self._ttl

    @property
    def events_maxlen(self) -> int:
        """Approximate cap of each batch's event stream."""
        return self._maxlen

    def _now(self) -> float:
        return round(self._clock(), 3)

    def now(self) -> float:
        """The ledger's wall clock (the one its timestamps use)."""
        return self._now()

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
        indexed: bool = False,
    ) -> BatchInfo:
        """Create a batch in state STAGING (its rows are written, nothing is enqueued yet).

        Its keys live ``staging_seconds`` past the last ``add_rows`` until it is opened. An
        ``indexed`` batch (a file's: many rows, few such batches at a time) keeps its rows
        out of the sessions' pending sets: other batches find them through its sessions hash,
        which costs a look-up per indexed batch open when a row is claimed.
        """
        now = self._now()
        bid = new_batch_id(now)
        fields = {
            "id": bid,
            "name": name,
            "kind": kind,
            "source": source,
            "digest": digest,
            "account": account,
            "parent_id": parent_id,
            "indexed": "1" if indexed else None,
            "created_at": repr(now),
            "state": BatchState.STAGING.value,
            "total": "0",
        }
        pipe = self._r.pipeline(transaction=True)
        pipe.hset(self.keys.batch(bid), mapping={k: v for k, v in fields.items() if v is not None})
        pipe.expire(self.keys.batch(bid), self._staging_ttl)
        pipe.zadd(self.keys.batches, {bid: now})
        pipe.expire(self.keys.batches, self._ttl)
        pipe.execute()
        self._prune_index()
        return self.get_batch(bid)

    def _prune_index(self) -> None:
        """Drop a few expired batch ids from the oldest end of the index (bounded work)."""
        oldest = [as_text(b) for b in cast(list[bytes], self._r.zrange(self.keys.batches, 0, 99))]
        pipe = self._r.pipeline(transaction=False)
        for bid in oldest:
            pipe.exists(self.keys.batch(bid))
        gone = [bid for bid, n in zip(oldest, pipe.execute(), strict=True) if not n]
        if gone:
            self._r.zrem(self.keys.batches, *gone)

    def add_rows(self, batch_id: str, rows: Iterable[NewRow]) -> int:
        """Write rows (pipelined, in chunks): valid rows QUEUED, rejected rows REJECTED.

        A second row for the same (account, session) in the batch becomes REJECTED with
        column ``id`` and reason "duplicate of row N". Each valid row gets the next global
        ``seq``. A row number already in the batch is left alone (so re-adding after a crash
        is safe). Memory stays bounded for any input size: rows are consumed lazily, 1000
        (or 1 MiB of them) per script call, up to 4 calls (or 4 MiB) per round trip, the
        next round trips built while one runs (``staging.RowWriter``).

        Args:
            batch_id: A STAGING or OPEN batch.
            rows: Any iterable of rows, consumed once.

        Returns:
            The number of rows written.

        Raises:
            NotFoundError: The batch is unknown.
            InputError: The batch is DONE or CANCELED.
        """
        ttls = (self._ttl, self._staging_ttl)
        writer = RowWriter(self._r, self._add, self.keys, batch_id, ttls, self._now)
        return writer.write(rows)

    def _run(self, pipe: Any, batch_id: str) -> list[Any]:
        """Execute a pipeline of scripts, mapping their error replies to vsbatch errors."""
        try:
            return cast(list[Any], pipe.execute())
        except redis.ResponseError as exc:
            raise script_error(exc, batch_id) from None

    def _batch_op(self, batch_id: str, op: str, *extra: str) -> str:
        keys = [*self.keys.batch_keys(batch_id), self.keys.batches, self.keys.indexed]
        args: list[str | int] = [op, repr(self._now()), self._ttl, batch_id, *extra]
        try:
            return as_text(cast(bytes, self._state(keys=keys, args=args)))
        except redis.ResponseError as exc:
            raise script_error(exc, batch_id) from None

    def open_batch(self, batch_id: str, options: dict[str, Any] | None = None) -> BatchInfo:
        """STAGING -> OPEN (or DONE at once when every row is already terminal).

        Other states are left as they are, so opening twice is harmless. ``options`` (how the
        rows are processed, JSON-safe) are kept with the batch so that it can be resumed.

        Raises:
            NotFoundError: The batch is unknown.
        """
        self._batch_op(batch_id, "open", *([] if options is None else [json.dumps(options)]))
        return self.get_batch(batch_id)

    def touch(self, batch_id: str) -> tuple[BatchState, dict[str, Any]]:
        """A worker starts on a chunk of the batch (``touched_at``: the batch is moving).

        Returns:
            The batch's state and its row options (``{}`` if it has none).

        Raises:
            NotFoundError: The batch is unknown or expired.
        """
        found = self._touch(keys=[self.keys.batch(batch_id)], args=[repr(self._now())])
        if not found:
            raise NotFoundError(f"no batch {batch_id} (unknown or expired)")
        state, options = (as_text(part) for part in cast(list[bytes], found))
        return BatchState(state), (json.loads(options) if options else {})

    def claim_sweep(self, batch_id: str, seconds: float) -> bool:
        """True for the one caller that may sweep this batch in the next ``seconds``."""
        key = self.keys.sweep(batch_id)
        return bool(self._r.set(key, "1", nx=True, ex=max(1, int(seconds))))

    def shorten_retention(self, batch_id: str, seconds: float) -> None:
        """Let every key of the batch expire within ``seconds`` (a longer TTL is cut, a
        shorter one kept): once the batch is in the results store, Redis need not keep it."""
        ttl = max(1, int(seconds))
        keys = self.keys.batch_keys(batch_id)
        pipe = self._r.pipeline(transaction=False)
        for key in keys:
            pipe.ttl(key)
        current = pipe.execute()
        pipe = self._r.pipeline(transaction=False)
        for key, left in zip(keys, current, strict=True):
            if int(left) == -1 or int(left) > ttl:  # -1: no TTL; -2: no key, nothing to do
                pipe.expire(key, ttl)
        pipe.execute()

    def discard_batch(self, batch_id: str) -> None:
        """Delete a STAGING batch and all its keys (a refused file leaves nothing behind).

        Raises:
            NotFoundError: The batch is unknown.
            InputError: The batch is not STAGING (its rows may already be enqueued).
        """
        state, indexed = cast(
            list[bytes | None], self._r.hmget(self.keys.batch(batch_id), ["state", "indexed"])
        )
        staging = state is not None and as_text(state) == BatchState.STAGING.value
        if staging and indexed is None:  # an indexed batch's rows joined no pending set
            self._leave_pending_sets(batch_id)
        self._batch_op(batch_id, "discard")

    def _leave_pending_sets(self, batch_id: str) -> None:
        """Take a staged batch's queued rows out of their sessions' pending sets, in pages.

        Safe outside the discard script: nothing works on a STAGING batch's rows.
        """
        fields = self._r.hscan_iter(self.keys.sessions(batch_id), count=BLOCK)
        while page := list(itertools.islice(fields, BLOCK)):
            pipe = self._r.pipeline(transaction=False)
            for session, row in page:
                pipe.zrem(self.keys.pending_prefix + as_text(session), f"{batch_id}:{as_text(row)}")
            pipe.execute()

    # -- worker side -----------------------------------------------------------------------
    def transition(
        self,
        batch_id: str,
        row: int,
        to: Outcome,
        *,
        fence: Fence | None = None,
        only_from: Outcome | None = None,
        **fields: Any,
    ) -> bool:
        """Move a non-terminal row to ``to`` and set ``fields`` (RowRecord attribute names).

        Atomic (one Lua script). Returns False, changing nothing, when the row is already
        terminal. ``attempts`` in fields replaces the count; a field set to its default
        (None, 0, False, {}) is removed; moving to SUCCEEDED removes the error fields not given.
        Counters move once per real transition; moving to the same non-terminal outcome just
        updates the fields. The batch becomes DONE when this was
        its last non-terminal row. With a ``fence`` (given, or that of an enclosing
        :meth:`fenced` block), the row is written only while the lock holds the fence's token.
        With ``only_from``, the row is written only if it is in that outcome (else False).

        Raises:
            LockLostError: The fence's lock no longer holds its token; nothing was written.
            NotFoundError: The row does not exist.
            TypeError: A field is not a patchable RowRecord attribute.
        """
        unknown = set(fields) - PATCHABLE
        if unknown:
            raise TypeError(f"transition cannot set {sorted(unknown)}")
        if Outcome(to) is Outcome.SUCCEEDED:
            # An applied row has no error: an earlier try's error is history (the events
            # stream), never a succeeded row's reason or error fields.
            fields = {**dict.fromkeys(ERROR_FIELDS), **fields}
        patch = {ROW_KEYS[k]: stored_form(k, v) for k, v in fields.items()}
        keys = self.keys.row_script_keys(batch_id)
        args = [str(row), Outcome(to).value, compact_json(patch), repr(self._now()), self._ttl]
        args += [self._maxlen, self.keys.pending_prefix, batch_id]
        fence = fence or _FENCE.get()
        if fence is not None:
            keys.append(fence.key)
        if fence is not None or only_from is not None:
            args.append(fence.token if fence is not None else "")  # ARGV[9]: "" = not fenced
        if only_from is not None:
            args.append(Outcome(only_from).value)
        try:
            written = int(cast(int, self._transition(keys=keys, args=args)))
        except redis.ResponseError as exc:
            raise script_error(exc, batch_id) from None
        if written < 0:
            raise LockLostError(f"row {row} of batch {batch_id}: its session's lock was lost")
        return bool(written)

    @contextmanager
    def fenced(self, fence: Fence) -> Iterator[None]:
        """Fence every :meth:`transition` this thread makes inside the block with ``fence``.

        A worker holds a session's lock while it works on one of its rows; inside this block
        each write of the row lands only while the lock still holds the worker's token, so a
        worker that was paused and lost its lock to the fleet cannot overwrite the fleet's
        outcome, whichever step it resumes at.
        """
        reset = _FENCE.set(fence)
        try:
            yield
        finally:
            _FENCE.reset(reset)

    def cancel(self, batch_id: str) -> BatchInfo:
        """Cancel the batch: its rows never sent end skipped (batch_canceled) at once.

        The batch becomes CANCELED (workers then send none of its queued rows), then every row
        still QUEUED is skipped by a transition guarded on QUEUED, so a row a worker began
        meanwhile is left to it. Rows running or retrying were or may have been sent: their
        worker, or the fleet under the session's lock, resolves them to their real outcome.
        DONE batches stay DONE. Raises NotFoundError for an unknown batch.
        """
        if self._batch_op(batch_id, "cancel") == BatchState.CANCELED.value:
            self._skip_queued(batch_id)
        return self.get_batch(batch_id)

    def _skip_queued(self, batch_id: str) -> None:
        """Skip (batch_canceled) the batch's QUEUED rows, 1000 row numbers per script call."""
        queued = (n for n, raw in self._scan(batch_id) if outcome_name(raw) == DEFAULT_OUTCOME)
        keys = self.keys.row_script_keys(batch_id)
        while block := list(itertools.islice(queued, BLOCK)):
            args: list[str | int] = [repr(self._now()), self._ttl, self._maxlen]
            args += [self.keys.pending_prefix, batch_id, SkipReason.CANCELED.value, *block]
            self._cancel_rows(keys=keys, args=args)

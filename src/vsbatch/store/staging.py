"""Writing new rows into a batch (``Ledger.add_rows``): add_rows.lua calls built from the rows
as they come, sent by one background thread while the next calls are built.

A row goes to the script as one argument, its stored parts joined by NUL (``encode_new``):
packing four arguments per row cost the producer about as much as parsing the row. The
parts before the last can hold no NUL (a row number, JSON texts); the session key, which
could, comes last. Building a round trip (parsing, encoding) and running the previous one
in Redis overlap; at most ``_AHEAD`` round trips wait, so memory stays flat.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, cast

import redis
from redis.commands.core import Script

from vsbatch.model.row import NewRow
from vsbatch.store.codec import encode_new, script_error
from vsbatch.store.keys import Keys
from vsbatch.store.ledger_reader import BLOCK  # rows per add_rows.lua call

# Calls are cut by size too, so rows near the CSV caps (a rejected row keeps its cells)
# cannot make one round trip hold gigabytes.
_CALL_BYTES = 1 << 20
_PIPELINE_BYTES = 4 << 20
_CALLS = 4  # script calls per round trip
_AHEAD = 1  # round trips waiting while one runs (and the next is built)


class RowWriter:
    """Writes rows into one batch with add_rows.lua (see ``Ledger.add_rows``).

    Args:
        client: The ledger's Redis client.
        script: add_rows.lua, registered on ``client``.
        keys: The ledger's key names.
        batch_id: The batch the rows go to.
        ttls: The retention and staging TTLs, whole seconds.
        now: The ledger's clock (rounded to milliseconds).
    """

    def __init__(
        self,
        client: redis.Redis,
        script: Script,
        keys: Keys,
        batch_id: str,
        ttls: tuple[int, int],
        now: Callable[[], float],
    ) -> None:
        self._client = client
        self._script = script
        self._keys = [*keys.batch_keys(batch_id)[:4], keys.seq, keys.events(batch_id)]
        self._keys.append(keys.indexed)
        self._head: list[str | int] = [ttls[0], "", keys.pending_prefix, batch_id, ttls[1]]
        self._batch_id = batch_id
        self._now = now

    def write(self, rows: Iterable[NewRow]) -> int:
        """Write the rows; return how many were written (rows already there are not)."""
        written = 0
        waiting: deque[Future[int]] = deque()
        with ThreadPoolExecutor(1, thread_name_prefix="vsbatch-add-rows") as sender:
            try:
                for pipe in self._round_trips(iter(rows)):
                    waiting.append(sender.submit(self._run, pipe))
                    if len(waiting) > _AHEAD:
                        written += waiting.popleft().result()
                while waiting:
                    written += waiting.popleft().result()
            finally:
                for future in waiting:  # a failure here or there: send nothing more
                    future.cancel()
        return written

    def _round_trips(self, rows: Iterator[NewRow]) -> Iterator[Any]:
        """Pipelines of up to ``_CALLS`` script calls (or ``_PIPELINE_BYTES``), built as the
        rows come."""
        more = True
        while more:
            pipe = self._client.pipeline(transaction=False)
            calls = size = 0
            while more and calls < _CALLS and size < _PIPELINE_BYTES:
                args, count, more, call_size = self._script_args(rows)
                if not count:
                    break
                self._script(keys=self._keys, args=args, client=pipe)
                calls += 1
                size += call_size
            if calls:
                yield pipe

    def _script_args(self, rows: Iterator[NewRow]) -> tuple[list[str | int], int, bool, int]:
        """One call's arguments: up to ``BLOCK`` rows or ``_CALL_BYTES`` of them; the number
        of rows, whether rows may follow, and the call's size."""
        now = self._now()
        args: list[str | int] = list(self._head)
        args[1] = repr(now)
        count = size = 0
        for new in rows:
            encoded = "\0".join(encode_new(new, now, self._batch_id))
            args.append(encoded)
            count += 1
            size += len(encoded)
            if count == BLOCK or size >= _CALL_BYTES:
                return args, count, True, size
        return args, count, False, size

    def _run(self, pipe: Any) -> int:
        """Execute one round trip (in the sender thread); the rows it wrote."""
        try:
            replies = cast(list[Any], pipe.execute())
        except redis.ResponseError as exc:
            raise script_error(exc, self._batch_id) from None
        return sum(int(n) for n in replies)

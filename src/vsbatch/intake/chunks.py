"""Cutting a batch's pending rows into queue messages (chunks of row numbers).

A chunk's rows run one after another in one worker thread, so how rows are grouped decides
how the fleet's threads spread over the batch: chunks shrink toward the end of a batch
(guided self-scheduling, :func:`chunk_size`), and each holds one Stripe account's rows
(:func:`cut_chunks`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

__all__ = ["OPEN_CHUNKS", "SPREAD", "STALE", "chunk_size", "cut_chunks"]

# Messages a batch is spread over when its size allows (more than a fleet's worker threads).
SPREAD = 256
# Accounts whose chunks may be filling at once (bounds the producer's memory), and how many
# turns of the accounts filling a chunk may wait for its account's next row (see _Filling).
OPEN_CHUNKS = 256
STALE = 2


def cut_chunks(
    rows: Iterable[tuple[int, str | None]], pending: int, largest: int
) -> Iterator[list[int]]:
    """Cut (row, account) pairs into messages of one account each, shrinking toward the end.

    A chunk's rows run one after another in one thread, each waiting for its account's rate
    slot. Chunks mixing accounts hold their thread on one account's slot while the rows
    behind it, of accounts with slots free, wait too: the threads walk the accounts in step,
    pile up behind whichever account is slowest and leave the others without senders
    (``docs/concurrency.md``). So each account fills its own chunks, in row order (see
    :class:`_Filling` for the accounts whose rows stop or that have a row or two).

    Each message holds :func:`chunk_size` of the rows still to cut (``pending`` at first), so a
    batch starts with chunks of ``largest`` rows and ends with single rows. A chunk's rows
    running in one thread, equal chunks would leave the last few running alone for ``chunk x
    latency`` seconds (100 s at 100 rows and 1 s) while the other threads idle; shrinking
    ones end together. It costs about ``SPREAD x ln(largest)`` more messages, whatever the
    batch's size.
    """
    filling = _Filling()
    left = pending
    size = chunk_size(left, largest)
    for position, (row, account) in enumerate(rows):
        for chunk in filling.add(position, row, account, size):
            left -= len(chunk)
            size = chunk_size(left, largest)
            yield chunk
    yield from filling.rest()


class _Chunk:
    """One account's chunk being filled, and where in the input its last row was."""

    __slots__ = ("last", "rows")

    def __init__(self, last: int) -> None:
        self.last = last
        self.rows: list[int] = []


class _Filling:
    """The chunks being filled, one per account, the account with the oldest last row first.

    A chunk goes out once it holds ``size`` rows. Before that, the oldest goes out as it is
    once no row of its account came for ``STALE`` turns of the accounts filling (its rows
    stopped: a file sorted by account; left for the end, it would run alone after every
    other row). Past ``OPEN_CHUNKS`` accounts filling at once (accounts with a row or two),
    the oldest share one chunk: an account that sends so little never waits for a slot, and
    one message per row would flood the broker.
    """

    def __init__(self) -> None:
        self._open: dict[str | None, _Chunk] = {}
        self._newest: str | None = None

    def add(self, position: int, row: int, account: str | None, size: int) -> list[list[int]]:
        """Add the input's ``position``-th row; return the chunks ready to go out."""
        chunk = self._open.get(account)
        if chunk is None:
            chunk = self._open[account] = _Chunk(position)
        elif account != self._newest:
            self._open[account] = self._open.pop(account)  # now the newest
        chunk.last, self._newest = position, account
        chunk.rows.append(row)
        ready = []
        if len(chunk.rows) >= size:
            del self._open[account]
            ready.append(chunk.rows)
        if len(self._open) > OPEN_CHUNKS:
            ready.append(self._shared(size))
        elif len(self._open) > 1 and self._stale(position, size):
            ready.append(self._open.pop(next(iter(self._open))).rows)
        return ready

    def _stale(self, position: int, size: int) -> bool:
        oldest = next(iter(self._open.values()))
        return position - oldest.last > STALE * size * len(self._open)

    def _shared(self, size: int) -> list[int]:
        shared: list[int] = []
        while self._open and len(shared) < size:
            shared += self._open.pop(next(iter(self._open))).rows
        return shared

    def rest(self) -> Iterator[list[int]]:
        """The chunks still filling at the end of the input."""
        for chunk in self._open.values():
            yield chunk.rows


def chunk_size(total: int, largest: int) -> int:
    """Rows per message for ``total`` rows still to cut: at most ``largest``, and small enough
    for ``SPREAD`` messages (1 when ``total`` is at most ``SPREAD``).

    A chunk's rows run one after another in one worker thread, so a 1,000-row batch cut in
    chunks of 100 would keep only 10 threads busy; cut finer, it keeps the fleet busy, while
    a million rows still make only about ``1,000,000 / largest`` messages.
    """
    return max(1, min(largest, math.ceil(total / SPREAD)))

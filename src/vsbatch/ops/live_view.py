"""The live view's data (``status --watch``): snapshots of the open batches, and rows/s.

:class:`LiveReader` takes one :class:`Snapshot` per refresh: the batches' counters, the most
frequent reasons among their recent failures, the workers alive and each account's rate
limit. A refresh costs a bounded number of Redis round trips whatever the batches' size, and
scans no rows: counters come from the batch hashes (as ``status``), reasons from the last
``EVENTS_SAMPLE`` entries of each batch's events stream and the records of at most
``ROWS_SAMPLE`` rows that failed among them (a record read once is remembered: a failed row's
reason does not change), workers from their heartbeats, limits from one script call per
account. The ledger keeps no reason counter, so the reasons are a sample, not a census.

:class:`RateWindow` turns successive snapshots into rows finished per second, per batch and
per account (a batch counts for its default account), from counter deltas over the last
``RATE_WINDOW`` seconds of an injected clock: no sleeping, no Redis.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from vsbatch.errors import NotFoundError
from vsbatch.model.row import TERMINAL, BatchInfo, BatchState, Outcome
from vsbatch.ops.reasons import reason
from vsbatch.store.codec import as_text, decode_row
from vsbatch.store.ledger_reader import LedgerReader
from vsbatch.store.liveness import live_nodes
from vsbatch.store.rate_limit import RateLimiter

if TYPE_CHECKING:
    import redis

__all__ = [
    "AccountLimit",
    "LiveReader",
    "RateWindow",
    "Snapshot",
    "View",
    "account_label",
    "batch_rates",
]

PLATFORM = "platform"  # the label of rows sent without a Stripe-Account
EVENTS_SAMPLE = 200  # newest events read per batch and refresh
ROWS_SAMPLE = 50  # newest failed rows whose reason is counted, per batch
TOP_REASONS = 5
LISTED = 50  # newest batches looked at for open ones (as ``status``)
RATE_WINDOW = 10.0  # seconds: rates are current, not the run's average


def account_label(account: str | None) -> str:
    """The account as the view names it (``platform`` for none)."""
    return account or PLATFORM


@dataclass(frozen=True)
class AccountLimit:
    """An account's rate limit: the configured ceiling and the fleet's current rate (lower
    after Stripe answered 429), requests per second."""

    configured: float
    current: float


@dataclass(frozen=True)
class Snapshot:
    """What the view shows at one refresh.

    Args:
        at: When it was read, in the reader's (injected) clock's seconds.
        batches: The batches shown, newest first.
        reasons: The most frequent failure reasons in the sample, with their row counts.
        workers: Worker processes whose heartbeat is alive.
        limits: Account label -> its rate limit (only accounts of the batches shown).
    """

    at: float
    batches: tuple[BatchInfo, ...]
    reasons: tuple[tuple[str, int], ...] = ()
    workers: int = 0
    limits: dict[str, AccountLimit] = field(default_factory=dict)

    @property
    def accounts(self) -> list[str]:
        """The labels of the accounts of the batches shown, sorted."""
        return sorted({account_label(b.account) for b in self.batches})

    def totals(self) -> dict[Outcome, int]:
        """Rows per outcome over every batch shown."""
        return {o: sum(b.counts.get(o, 0) for b in self.batches) for o in Outcome}


def batch_rates(older: Snapshot, newer: Snapshot) -> dict[str, float]:
    """Rows finished per second of each batch of ``newer`` since ``older``.

    A batch absent from ``older`` has no rate yet (0.0): its rows finished before the first
    look (rejected at intake, say) did not finish at any rate we saw.
    """
    elapsed = newer.at - older.at
    before = {b.id: b.terminal for b in older.batches}
    rates: dict[str, float] = {}
    for batch in newer.batches:
        done = batch.terminal - before.get(batch.id, batch.terminal)
        rates[batch.id] = max(done, 0) / elapsed if elapsed > 0 else 0.0
    return rates


@dataclass(frozen=True)
class View:
    """A snapshot and the rates of its batches: what the renderer draws."""

    snapshot: Snapshot
    rates: dict[str, float]

    @property
    def account_rates(self) -> dict[str, float]:
        """Rows finished per second per account label (each batch counts for its account)."""
        totals = dict.fromkeys(self.snapshot.accounts, 0.0)
        for batch in self.snapshot.batches:
            label = account_label(batch.account)
            totals[label] += self.rates.get(batch.id, 0.0)
        return totals


class RateWindow:
    """Rates over the last ``window`` seconds: each snapshot is compared with the oldest one
    still inside the window (or the one just before it)."""

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self.window = window
        self._seen: deque[Snapshot] = deque()

    def add(self, snapshot: Snapshot) -> View:
        """Record ``snapshot``; return it with its batches' rates."""
        self._seen.append(snapshot)
        while len(self._seen) > 2 and snapshot.at - self._seen[1].at >= self.window:
            self._seen.popleft()
        return View(snapshot, batch_rates(self._seen[0], snapshot))


class LiveReader:
    """Reads a :class:`Snapshot` of the open batches, or of the batches named.

    Args:
        ledger: The ledger (its Redis holds the events, heartbeats and limiter state too).
        batch_ids: Follow these batches, whatever their state; by default the open ones
            (a batch that finishes is shown once more, done, then left out).
        limiter: The fleet's rate limiter, to show each account's limit; None shows none.
        clock: Monotonic seconds (injected for tests).
        events_sample: Newest events read per batch.
        rows_sample: Newest failed rows per batch whose reason is counted.
    """

    def __init__(
        self,
        ledger: LedgerReader[redis.Redis],
        *,
        batch_ids: Sequence[str] | None = None,
        limiter: RateLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
        events_sample: int = EVENTS_SAMPLE,
        rows_sample: int = ROWS_SAMPLE,
    ) -> None:
        self._ledger = ledger
        self._ids = list(batch_ids) if batch_ids is not None else None
        self._limiter = limiter
        self._clock = clock
        self._events = events_sample
        self._rows = rows_sample
        self._shown: list[str] = []
        self._known: dict[str, dict[int, str]] = {}  # batch -> failed row -> its reason

    def snapshot(self) -> Snapshot:
        """Read the batches, a sample of their failure reasons, the workers and the limits.

        Raises:
            NotFoundError: A batch named at construction is unknown or expired.
        """
        batches = self._batches()
        keys = self._ledger.keys
        limits = {}
        if self._limiter is not None:
            for batch in batches:
                label = account_label(batch.account)
                if label not in limits:
                    limits[label] = AccountLimit(
                        self._limiter.configured_rate(batch.account),
                        self._limiter.current_rate(batch.account),
                    )
        return Snapshot(
            at=self._clock(),
            batches=tuple(batches),
            reasons=tuple(self._reasons(batches).most_common(TOP_REASONS)),
            workers=len(live_nodes(self._ledger.client, keys)),
            limits=limits,
        )

    def _batches(self) -> list[BatchInfo]:
        if self._ids is not None:
            return [self._ledger.get_batch(bid) for bid in self._ids]
        listed = self._ledger.list_batches(LISTED)
        shown = [b for b in listed if b.state is BatchState.OPEN or b.id in self._shown]
        for bid in set(self._shown) - {b.id for b in listed}:
            try:  # shown last time, now past the newest LISTED: show it once more
                shown.append(self._ledger.get_batch(bid))
            except NotFoundError:
                continue
        self._shown = [b.id for b in shown if b.state is BatchState.OPEN]
        return sorted(shown, key=lambda b: b.created_at, reverse=True)

    def _reasons(self, batches: Sequence[BatchInfo]) -> Counter[str]:
        """Reasons of the newest failed rows found in each batch's newest events."""
        client, keys = self._ledger.client, self._ledger.keys
        pipe = client.pipeline(transaction=False)
        for batch in batches:
            pipe.xrevrange(keys.events(batch.id), count=self._events)
        sampled: dict[str, list[int]] = {}
        for batch, entries in zip(batches, pipe.execute(), strict=True):
            rows: list[int] = []
            for _entry_id, raw in cast(list[tuple[Any, dict[Any, Any]]], entries):
                event = {as_text(k): as_text(v) for k, v in raw.items()}
                row = int(event.get("row", 0))
                if event.get("to") == Outcome.FAILED.value and row not in rows:
                    rows.append(row)
            sampled[batch.id] = rows[: self._rows]
        self._read_missing(sampled)
        counts: Counter[str] = Counter()
        for bid, rows in sampled.items():
            known = self._known.get(bid, {})
            counts.update(known[r] for r in rows if r in known)
        return counts

    def _read_missing(self, sampled: dict[str, list[int]]) -> None:
        """Read the records of the sampled rows not read before; forget rows left out."""
        client, keys = self._ledger.client, self._ledger.keys
        known = {bid: self._known.get(bid, {}) for bid in sampled}
        missing = {bid: [r for r in rows if r not in known[bid]] for bid, rows in sampled.items()}
        pipe = client.pipeline(transaction=False)
        wanted = [(bid, rows) for bid, rows in missing.items() if rows]
        for bid, rows in wanted:
            pipe.hmget(keys.rows(bid), [str(r) for r in rows])
        for (bid, rows), raws in zip(wanted, pipe.execute() if wanted else [], strict=True):
            for row, raw in zip(rows, raws, strict=True):
                if raw is None:
                    continue
                record = decode_row(bid, row, raw)
                if record.outcome in TERMINAL:  # final: its reason is final too
                    known[bid][row] = reason(record) or record.outcome.value
        self._known = {
            bid: {r: known[bid][r] for r in sampled[bid] if r in known[bid]} for bid in sampled
        }

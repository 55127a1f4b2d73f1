"""How ``status --watch`` shows the live view: a full-screen Rich ``Live`` on a terminal, one
plain line per batch and refresh elsewhere (a pipe, a file), with an injected clock and sleep.

The data comes from :mod:`vsbatch.ops.live_view`; here it is only drawn. Every text from the
data (batch ids and names, account ids, reasons) goes through ``safe``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from vsbatch.model.row import BatchState, Outcome
from vsbatch.ops.live_view import LiveReader, RateWindow, Snapshot, View, account_label
from vsbatch.ops.terminal_text import safe

if TYPE_CHECKING:
    from vsbatch.model.row import BatchInfo
    from vsbatch.store.ledger import Ledger

__all__ = ["plain_lines", "render", "watch", "watch_status"]

REFRESH = 1.0  # seconds between refreshes (and plain lines)
FINAL = (Outcome.SUCCEEDED, Outcome.SKIPPED, Outcome.FAILED, Outcome.REJECTED)
WAITING = (Outcome.QUEUED, Outcome.RUNNING, Outcome.RETRYING)


def _workers(count: int) -> str:
    return f"{count} worker{'' if count == 1 else 's'} alive"


def _limit(view: View, label: str) -> str:
    limit = view.snapshot.limits.get(label)
    if limit is None:
        return "-"
    if limit.current < limit.configured - 0.05:  # cut after a 429: say both
        return f"{limit.current:.1f}/s (of {limit.configured:g}/s)"
    return f"{limit.configured:g}/s"


def render(view: View) -> RenderableType:
    """The full-screen view: accounts (rows/s against the limit), batches, failure reasons."""
    snap = view.snapshot
    count = len(snap.batches)
    header = Text(f"vsbatch · {count} batch{'' if count == 1 else 'es'} · ", style="bold")
    header.append(_workers(snap.workers), style="bold" if snap.workers else "bold red")
    if not snap.batches:
        return Group(header, Text("no open batch", style="dim"))
    accounts = Table(title="accounts", title_justify="left", box=None, pad_edge=False)
    for name in ("account", "rows/s", "limit (requests/s)"):
        accounts.add_column(name, justify="left" if name == "account" else "right")
    for label, rate in view.account_rates.items():
        accounts.add_row(safe(label), f"{rate:.1f}", _limit(view, label))
    batches = Table(title="batches", title_justify="left", box=None, pad_edge=False)
    batches.add_column("batch", no_wrap=True)
    batches.add_column("name", overflow="ellipsis", min_width=6, max_width=12, no_wrap=True)
    batches.add_column("final", justify="right", no_wrap=True)
    for outcome in FINAL:
        batches.add_column(outcome.value, justify="right")
    batches.add_column("waiting", justify="right")
    batches.add_column("rows/s", justify="right")
    for batch in snap.batches:
        waiting = sum(batch.counts.get(o, 0) for o in WAITING)
        batches.add_row(
            safe(batch.id),
            safe(batch.name),
            f"{batch.terminal}/{batch.total}" + ("" if batch.state.value == "open" else " ✓"),
            *(str(batch.counts.get(o, 0)) for o in FINAL),
            str(waiting),
            f"{view.rates.get(batch.id, 0.0):.1f}",
        )
    parts: list[RenderableType] = [header, Text(), accounts, Text(), batches, Text()]
    reasons = Table(
        title="failure reasons (newest)", title_justify="left", box=None, pad_edge=False
    )
    reasons.add_column("reason")
    reasons.add_column("rows", justify="right")
    for text, rows in snap.reasons:
        reasons.add_row(safe(text), str(rows))
    parts.append(reasons if snap.reasons else Text("no failure among the newest rows"))
    return Group(*parts)


def plain_lines(view: View) -> list[str]:
    """One line per batch (or one saying there is none), for a pipe: no markup, no colour."""
    snap = view.snapshot
    workers = _workers(snap.workers)
    if not snap.batches:
        return [f"no open batch · {workers}"]
    lines = []
    for batch in snap.batches:
        counts = ", ".join(f"{o.value} {batch.counts.get(o, 0)}" for o in (*FINAL, *WAITING))
        label = account_label(batch.account)
        lines.append(
            f"{batch.id} {batch.state.value} {batch.terminal}/{batch.total} · {counts}"
            f" · {view.rates.get(batch.id, 0.0):.1f} rows/s · account {label}"
            f" limit {_limit(view, label)} · {workers}"
        )
    return lines


def watch(
    read: Callable[[], Snapshot],
    console: Console,
    *,
    done: Callable[[Snapshot], bool] | None = None,
    interval: float = REFRESH,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Snapshot:
    """Show snapshots from ``read`` every ``interval`` seconds until ``done`` says so.

    On a terminal the view takes the whole screen (given back on return or Ctrl-C); elsewhere
    each refresh prints :func:`plain_lines`. Without ``done`` it runs until interrupted.

    Returns:
        The last snapshot (the one ``done`` accepted).
    """
    rates = RateWindow()
    live = (
        Live(console=console, screen=True, auto_refresh=False, transient=True)
        if console.is_terminal
        else None
    )
    if live is not None:
        live.start()
    try:
        while True:
            started = clock()
            view = rates.add(read())
            if live is not None:
                live.update(render(view), refresh=True)
            else:
                for line in plain_lines(view):
                    console.print(safe(line), highlight=False, soft_wrap=True)
            if done is not None and done(view.snapshot):
                return view.snapshot
            sleep(max(interval - (clock() - started), 0.0))
    finally:
        if live is not None:
            live.stop()


def watch_status(ledger: Ledger, rate: float, batch_id: str | None, console: Console) -> BatchInfo:
    """``status --watch``: the open batches until Ctrl-C, or ``batch_id`` until it is done.

    Args:
        ledger: The ledger to read.
        rate: The configured rate limit per account (the workers' setting), requests/s.
        batch_id: The batch to follow; None follows every open batch.
        console: Where the view goes (standard output).

    Returns:
        The batch as it was when done (never returns without ``batch_id``).
    """
    from vsbatch.store.rate_limit import RedisRateLimiter

    limiter = RedisRateLimiter(ledger.client, rate=lambda _account: rate, prefix=ledger.keys.prefix)
    ids = None if batch_id is None else [batch_id]
    reader = LiveReader(ledger, batch_ids=ids, limiter=limiter)

    def done(snapshot: Snapshot) -> bool:
        if batch_id is None:
            return False
        batch = snapshot.batches[0]
        return batch.terminal >= batch.total or batch.state is BatchState.DONE

    return watch(reader.snapshot, console, done=done).batches[0]

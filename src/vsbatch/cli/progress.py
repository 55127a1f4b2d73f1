"""Waiting for a batch with a progress bar and an ETA (injected console, clock and sleep)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from vsbatch.model.row import BatchInfo, BatchState, Outcome
from vsbatch.ops.terminal_text import visible
from vsbatch.store.ledger import Ledger

# The rate shown is over the last RATE_WINDOW seconds: current, not the run's average.
RATE_WINDOW = 10.0
SHOWN = (Outcome.SUCCEEDED, Outcome.SKIPPED, Outcome.FAILED, Outcome.REJECTED)


class Rate:
    """Rows finished per second over the last ``window`` seconds (of an injected clock)."""

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, now: float, finished: int) -> float:
        """Record ``finished`` rows at ``now``; return the rate since the window's start."""
        self._samples.append((now, finished))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
            self._samples.popleft()
        then, before = self._samples[0]
        return (finished - before) / (now - then) if now > then else 0.0


def describe(batch: BatchInfo, rate: float) -> str:
    """The progress line's detail: every final outcome's count, retries, the current rate."""
    parts = [f"{o.value} {batch.counts.get(o, 0)}" for o in SHOWN]
    retrying = batch.counts.get(Outcome.RETRYING, 0)
    if retrying:
        parts.append(f"retrying {retrying}")
    return f"{', '.join(parts)} · {rate:.1f} rows/s"


def wait_for_batch(
    ledger: Ledger,
    batch_id: str,
    console: Console,
    *,
    interval: float = 0.25,
    sleep: Callable[[float], None] = time.sleep,
    get_time: Callable[[], float] | None = None,
    check: Callable[[], None] | None = None,
) -> BatchInfo:
    """Poll the ledger until every row is terminal (or the batch is canceled and drained).

    ``check`` runs at every poll and raises to stop waiting (the workers can no longer
    progress: Redis refuses writes, or they stopped).
    """
    batch = ledger.get_batch(batch_id)
    columns = (
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[detail]}"),
    )
    clock = get_time or time.monotonic
    rate = Rate()
    with Progress(*columns, console=console, transient=False, get_time=get_time) as progress:
        task = progress.add_task(visible(batch.name), total=batch.total, detail="")
        while True:
            detail = describe(batch, rate.add(clock(), batch.terminal))
            progress.update(task, completed=batch.terminal, detail=detail)
            if batch.terminal >= batch.total or batch.state is BatchState.DONE:
                break
            if check is not None:
                check()
            sleep(interval)
            batch = ledger.get_batch(batch_id)
    return batch

"""Waiting for a batch with a progress bar and an ETA (injected console, clock and sleep)."""

from __future__ import annotations

import time
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

from vsbatch.ledger import BatchInfo, BatchState, Ledger, Outcome
from vsbatch.terminal_text import visible


def _describe(batch: BatchInfo) -> str:
    parts = [f"{o.value} {batch.counts.get(o, 0)}" for o in (Outcome.SUCCEEDED, Outcome.FAILED)]
    retrying = batch.counts.get(Outcome.RETRYING, 0)
    if retrying:
        parts.append(f"retrying {retrying}")
    return ", ".join(parts)


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
    with Progress(*columns, console=console, transient=False, get_time=get_time) as progress:
        task = progress.add_task(visible(batch.name), total=batch.total, detail="")
        while True:
            progress.update(task, completed=batch.terminal, detail=_describe(batch))
            if batch.terminal >= batch.total or batch.state is BatchState.DONE:
                break
            if check is not None:
                check()
            sleep(interval)
            batch = ledger.get_batch(batch_id)
    return batch

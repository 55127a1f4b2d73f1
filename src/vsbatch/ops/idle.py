"""What ``status`` says when open batches have rows waiting and no worker process is alive.

``submit`` only queues rows: without a ``vsbatch worker`` (or a ``run``/``resume`` working
here) they stay ``queued`` with nothing to say why. The answer comes from the workers'
heartbeats (``liveness``): a cheap read, so ``status`` stays light (no Celery, no httpx).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vsbatch.model.row import BatchInfo, BatchState
from vsbatch.store.ledger_reader import LedgerReader
from vsbatch.store.liveness import live_nodes

__all__ = ["no_worker_hint"]


def _waiting(batch: BatchInfo) -> bool:
    return batch.state is BatchState.OPEN and batch.terminal < batch.total


def no_worker_hint(ledger: LedgerReader[Any], batches: Iterable[BatchInfo]) -> str | None:
    """One line naming the fix when some batch waits for a worker and none is alive, else None.

    Args:
        ledger: The ledger whose Redis holds the worker heartbeats.
        batches: The batches the user is looking at.
    """
    waiting = [b for b in batches if _waiting(b)]
    if not waiting or live_nodes(ledger.client, ledger.keys):
        return None
    rows = sum(b.total - b.terminal for b in waiting)
    resume = f"vsbatch resume {waiting[0].id}" if len(waiting) == 1 else "vsbatch resume BATCH"
    return (
        f"no live worker: {rows} row(s) wait in {len(waiting)} open batch(es); start one with"
        f" 'vsbatch worker' (same VSBATCH_REDIS_URL and key), or work here with '{resume}'"
    )

"""What ``vsbatch status`` shows: a quick look at the ledger, or the live view (``--watch``).

The quick look reads through :func:`vsbatch.worker.runtime.reader_for`, without redis-py when
the Redis URL allows (``store.resp``): it is what people run most, and it should start fast.
The live view runs for minutes and reads more (events, the limiter): it uses redis-py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vsbatch.cli.app import err, out
from vsbatch.errors import NotFoundError
from vsbatch.ops.terminal_text import safe

if TYPE_CHECKING:
    from vsbatch.config import Settings
    from vsbatch.model.row import BatchInfo

__all__ = ["hint", "show_status", "watch_status"]


def show_status(settings: Settings, batch_id: str | None) -> BatchInfo | None:
    """Print the recent batches (None), or read the one named, with the no-worker hint.

    A quick look: ``reader_for`` reads without redis-py when it can (startup time).
    """
    from vsbatch.ops import reports
    from vsbatch.ops.idle import no_worker_hint
    from vsbatch.worker.runtime import reader_for

    with reader_for(settings) as ledger:
        if batch_id is not None:
            try:
                batch = ledger.get_batch(batch_id)
            except NotFoundError:
                return _archived(settings, batch_id)
            hint(no_worker_hint(ledger, [batch]))
            return batch
        batches = ledger.list_batches()
        for batch in batches:
            counts = ", ".join(f"{k} {v}" for k, v in reports.counts_dict(batch).items() if v)
            out().print(f"{safe(batch.id)}  {batch.state.value:9} {safe(batch.name)}  ({counts})")
        hint(no_worker_hint(ledger, batches))
        return None


def watch_status(settings: Settings, batch_id: str | None) -> BatchInfo | None:
    """The live view: of the open batches until Ctrl-C (None), or of one until it is done."""
    from vsbatch.cli.live_render import watch_status as live_view
    from vsbatch.ops.idle import no_worker_hint
    from vsbatch.worker.runtime import ledger_for

    with ledger_for(settings) as ledger:
        if batch_id is None:
            hint(no_worker_hint(ledger, ledger.list_batches()))
            live_view(ledger, settings.effective_rate_limit, None, out())  # until Ctrl-C
            return None
        batch = ledger.get_batch(batch_id)
        hint(no_worker_hint(ledger, [batch]))
        return live_view(ledger, settings.effective_rate_limit, batch_id, out())


def _archived(settings: Settings, batch_id: str) -> BatchInfo:
    """A batch that has left Redis, as the results store keeps it (SQLAlchemy is imported
    only on this path: ``status`` of a batch in Redis stays quick)."""
    from vsbatch.cli.results import stored_batch

    with stored_batch(settings, batch_id) as (_, batch):
        hint(f"{batch_id} has left Redis: its counters are read from the results store")
        return batch


def hint(line: str | None) -> None:
    """Print ``line`` (when there is one) as a hint on standard error."""
    if line:
        err().print(f"[yellow]hint:[/yellow] {safe(line)}", highlight=False, soft_wrap=True)

"""Canceling a batch, as ``vsbatch cancel`` and the web dashboard's Cancel button do it: the
ledger's cancel, and the one line that says what became of the batch's rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vsbatch.model.row import BatchState, Outcome

if TYPE_CHECKING:
    from vsbatch.model.row import BatchInfo
    from vsbatch.store.ledger import Ledger

__all__ = ["cancel_batch"]


def cancel_batch(ledger: Ledger, batch_id: str) -> tuple[BatchInfo, str]:
    """Cancel the batch; return it as it is now and the line to show.

    Rows never sent end skipped (batch_canceled) at once; rows already sent (or being sent)
    end in their real outcome. A batch already done or canceled is left as it is.

    Raises:
        NotFoundError: The batch is unknown or expired.
    """
    before = ledger.get_batch(batch_id).counts.get(Outcome.SKIPPED, 0)
    batch = ledger.cancel(batch_id)
    if batch.state is not BatchState.CANCELED:
        return batch, f"batch {batch.id} is {batch.state.value}: nothing to cancel"
    skipped = batch.counts.get(Outcome.SKIPPED, 0) - before
    line = f"batch {batch.id} canceled: {skipped} rows never sent end skipped (batch_canceled)"
    in_flight = batch.total - batch.terminal
    if in_flight:
        line += f"; {in_flight} rows already sent or being sent end in their real outcome"
    return batch, line

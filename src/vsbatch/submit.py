"""The producer: turns a CSV file into a staged ledger batch, then enqueues it in chunks.

Rows are streamed into the ledger while the batch is STAGING, so a file that turns out to be
malformed half way (bad bytes at row 900,000) is discarded whole and nothing is enqueued.
Messages carry chunks of row numbers, never the rows: a million-row batch is about
``1,000,000 / chunk_size`` small messages.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from vsbatch.bootstrap import Deps
from vsbatch.csv_io import ParsedRow, file_digest, read_updates
from vsbatch.errors import CsvFileError, VsbatchError
from vsbatch.ledger import BatchInfo, Ledger, NewRow, Outcome
from vsbatch.processing import RowOptions
from vsbatch.updates import idempotency_key

Enqueue = Callable[[str, list[int], RowOptions], None]
# Messages a batch is spread over when its size allows (more than a fleet's worker threads).
SPREAD = 256


@dataclass(frozen=True)
class SubmitOptions:
    """How a file becomes a batch."""

    name: str | None = None
    strict: bool = False  # refuse the whole file when any row is invalid
    account: str | None = None  # default Stripe-Account for rows without one
    row_options: RowOptions = field(default_factory=RowOptions)


def submit_csv(
    deps: Deps, path: Path, enqueue: Enqueue, options: SubmitOptions | None = None
) -> BatchInfo:
    """Validate, stage and enqueue a CSV file; return the opened batch.

    Raises:
        CsvFileError: the file is refused (nothing was enqueued, the staged batch is gone).
    """
    options = options or SubmitOptions()
    ledger = deps.ledger
    path = Path(path)
    try:
        digest = file_digest(path)
    except OSError as exc:
        raise CsvFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    batch = ledger.create_batch(
        name=options.name or path.name,
        kind="csv",
        source=str(path),
        digest=digest,
        account=options.account,
    )
    try:
        ledger.add_rows(batch.id, _new_rows(batch.id, read_updates(path), options.account))
        if options.strict:
            _refuse_rejections(ledger, batch.id)
    except VsbatchError:
        ledger.discard_batch(batch.id)
        raise
    return open_and_enqueue(deps, batch.id, enqueue, options.row_options)


def open_and_enqueue(
    deps: Deps, batch_id: str, enqueue: Enqueue, row_options: RowOptions
) -> BatchInfo:
    """Open a staged batch and enqueue its pending rows in chunks (see :func:`chunk_size`)."""
    batch = deps.ledger.open_batch(batch_id)
    size = chunk_size(batch.total, deps.settings.chunk_size)
    for chunk in deps.ledger.pending_chunks(batch_id, size):
        enqueue(batch_id, chunk, row_options)
    return batch


def chunk_size(total: int, largest: int) -> int:
    """Rows per message: at most ``largest``, and small enough for ``SPREAD`` messages.

    A chunk's rows run one after another in one worker thread, so a 1,000-row batch cut in
    chunks of 100 would keep only 10 threads busy; cut finer, it keeps the fleet busy, while
    a million rows still make only ``1,000,000 / largest`` messages.
    """
    return max(1, min(largest, math.ceil(total / SPREAD)))


def _new_rows(
    batch_id: str, parsed: Iterator[ParsedRow], default_account: str | None
) -> Iterator[NewRow]:
    for item in parsed:
        account = item.account or default_account
        if item.update is None or item.error is not None:
            reason = item.error.reason if item.error else "invalid row"
            column = item.error.column if item.error else None
            # The input cells are kept so that ``failures`` gives the row back as it was.
            yield NewRow(
                item.row,
                item.session_id,
                account,
                None,
                rejection=(column, reason),
                extra={"raw": dict(item.raw)},
            )
            continue
        yield NewRow(
            row=item.row,
            session_id=item.session_id,
            account=account,
            params=item.update.to_params(),
            idempotency_key=idempotency_key(f"{batch_id}:{item.row}", item.update),
        )


def _refuse_rejections(ledger: Ledger, batch_id: str, shown: int = 5) -> None:
    """In strict mode, any rejected row refuses the file; name the first few."""
    batch = ledger.get_batch(batch_id)
    rejected = batch.counts.get(Outcome.REJECTED, 0)
    if not rejected:
        return
    first = []
    for record in ledger.iter_rows(batch_id, [Outcome.REJECTED]):
        first.append(f"row {record.row}, column {record.column or 'id'}: {record.reason}")
        if len(first) == shown:
            break
    raise CsvFileError(
        f"--strict: {rejected} invalid row(s); nothing was enqueued. " + "; ".join(first),
        row=None,
    )

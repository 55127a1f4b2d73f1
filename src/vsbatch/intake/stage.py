"""The producer: turns a CSV file into a staged ledger batch, then enqueues it in chunks.

Rows are streamed into the ledger while the batch is STAGING, so a file that turns out to be
malformed half way (bad bytes at row 900,000) is discarded whole and nothing is enqueued.
Messages carry chunks of row numbers of one Stripe account each, never the rows: a
million-row batch is about ``1,000,000 / chunk_size`` small messages, shrinking to single rows
at the end of the batch (:func:`cut_chunks`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from vsbatch.bootstrap import Deps, redis_refusal
from vsbatch.errors import BatchInProgressError, CsvFileError, InputError, NotFoundError
from vsbatch.intake.chunks import cut_chunks
from vsbatch.intake.csv_reader import ParsedRow, file_digest, read_updates
from vsbatch.intake.file_claim import claim_file, release_file
from vsbatch.model.row import BatchInfo, BatchState, NewRow, Outcome
from vsbatch.model.update_rules import SECRET_KEY, check_account, holds_secret_key
from vsbatch.store.ledger import Ledger
from vsbatch.stripe.keyscrub import MARK
from vsbatch.worker.row_options import RowOptions

log = logging.getLogger(__name__)

# Sends one chunk message. One that also has ``together()`` (a context manager: the worker's
# ``enqueue_chunk``) has the messages of one enqueueing sent together in pipelines.
Enqueue = Callable[[str, list[int], RowOptions], None]
# How many of the newest batches are searched for an open batch of the same file.
RESUME_LOOKBACK = 1000


@dataclass(frozen=True)
class SubmitOptions:
    """How a file becomes a batch."""

    name: str | None = None
    strict: bool = False  # refuse the whole file when any row is invalid
    account: str | None = None  # default Stripe-Account for rows without one
    row_options: RowOptions = field(default_factory=RowOptions)
    # A new batch even while one of the same file is open (its rows get new idempotency keys).
    new: bool = False


def check_submit_options(options: SubmitOptions) -> None:
    """InvalidUpdate (exit 2) when the default account is not a Stripe account id (the
    ``stripe_account`` column's rule), before anything is staged."""
    check_account(options.account)


def submit_csv(
    deps: Deps,
    path: Path,
    enqueue: Enqueue,
    options: SubmitOptions | None = None,
    *,
    digest: str | None = None,
) -> BatchInfo:
    """Validate, stage and enqueue a CSV file; return the opened batch.

    ``digest`` is the file's :func:`read_digest` when the caller has it already.

    Raises:
        BatchInProgressError: a batch of the same file and account is staging or open (and
            ``options.new`` is not set): nothing was staged.
        CsvFileError: the file is refused (nothing was enqueued, the staged batch is gone).
        ConfigError: Redis refused a write half way (MISCONF on a full disk, ...): nothing
            was enqueued; the staged rows are deleted, or expire within a day if Redis
            still refuses.
    """
    options = options or SubmitOptions()
    check_submit_options(options)
    ledger = deps.ledger
    path = Path(path)
    digest = digest or read_digest(path)
    batch = ledger.create_batch(
        name=options.name or path.name,
        kind="csv",
        source=str(path),
        digest=digest,
        account=options.account,
        indexed=True,
    )
    try:
        if not options.new:
            _claim(ledger, batch.id, digest, options.account)
        ledger.add_rows(batch.id, _new_rows(batch.id, read_updates(path), options.account))
        if options.strict:
            _refuse_rejections(ledger, batch.id)
    except redis.RedisError as exc:
        _try_discard(ledger, batch.id, digest, options.account)
        refusal = redis_refusal(exc)
        raise type(refusal)(
            f"{refusal}; batch {batch.id} was not submitted: nothing was enqueued"
        ) from None
    except BaseException:
        _try_discard(ledger, batch.id, digest, options.account)
        raise
    return open_and_enqueue(deps, batch.id, enqueue, options.row_options)


def _claim(ledger: Ledger, batch_id: str, digest: str, account: str | None) -> None:
    """Claim the file for the new batch, or name the live batch that holds it."""
    held = claim_file(ledger, batch_id, digest, account)
    if held == batch_id:
        return
    raise BatchInProgressError(
        f"batch {held} from this file is still being submitted or open: 'vsbatch status {held}'"
        f" shows it, 'vsbatch resume {held}' enqueues its unfinished rows again, 'vsbatch"
        f" cancel {held}' ends it (if its submit was killed); --new submits the file as a new"
        " batch, whose new idempotency keys apply rows already applied a second time",
        batch_id=held,
    )


def join_or_submit(
    deps: Deps,
    path: Path,
    enqueue: Enqueue,
    options: SubmitOptions | None = None,
    *,
    digest: str | None = None,
    on_wait: Callable[[str], None] = lambda batch_id: None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[BatchInfo, int | None]:
    """What ``run FILE`` does: resume the open batch of the same file, or submit the file.

    Returns the batch and, when an open batch was joined, how many of its rows were enqueued
    again (None for a new batch). A batch of the file that another process is still staging
    is waited for (``on_wait`` is told its id once), then joined once it is open, or the file
    is submitted again if that batch was discarded.
    """
    options = options or SubmitOptions()
    check_submit_options(options)
    digest = digest or read_digest(path)
    told = False
    while True:
        found = None if options.new else open_csv_batch(deps, digest, options.account)
        if found is None:
            try:
                return submit_csv(deps, path, enqueue, options, digest=digest), None
            except BatchInProgressError as exc:
                if not told:
                    on_wait(exc.batch_id)
                    told = True
                found = _when_opened(deps.ledger, exc.batch_id, sleep)
            if found is None or found.state is BatchState.CANCELED:
                continue  # gone, or canceled before it opened (nothing sent): submit anew
        if found.state is BatchState.OPEN:
            try:
                return resume(deps, found.id, enqueue)
            except InputError:
                found = deps.ledger.get_batch(found.id)  # it ended meanwhile: nothing to send
                if found.state is BatchState.OPEN:
                    raise
        return found, 0


def _when_opened(ledger: Ledger, batch_id: str, sleep: Callable[[float], None]) -> BatchInfo | None:
    """The batch once it is no longer staging; None if it is gone (discarded or expired)."""
    while True:
        try:
            batch = ledger.get_batch(batch_id)
        except NotFoundError:
            return None
        if batch.state is not BatchState.STAGING:
            return batch
        sleep(0.2)


def _try_discard(ledger: Ledger, batch_id: str, digest: str, account: str | None) -> None:
    """Delete a staged batch and its file claim; if Redis refuses even that, its keys expire
    on their own."""
    with contextlib.suppress(redis.RedisError):
        release_file(ledger, batch_id, digest, account)
        ledger.discard_batch(batch_id)


def open_and_enqueue(
    deps: Deps, batch_id: str, enqueue: Enqueue, row_options: RowOptions
) -> BatchInfo:
    """Open a staged batch and enqueue its pending rows in chunks (see :func:`chunk_size`)."""
    batch = deps.ledger.open_batch(batch_id, row_options.to_message())
    _enqueue_pending(deps, batch, enqueue, row_options)
    return batch


def resume(deps: Deps, batch_id: str, enqueue: Enqueue) -> tuple[BatchInfo, int]:
    """Enqueue again every unfinished row of a batch; return it and how many rows.

    For a run that was interrupted or a worker that crashed, without waiting for the broker's
    visibility timeout. Safe at any time: a row already final is not sent again, and a row
    still in flight elsewhere is sent under the same idempotency key (Stripe replays it). A
    canceled batch's unfinished rows are the ones it had in flight: resumed, they are resolved
    under their keys (``processing``), never skipped.

    Raises:
        InputError: The batch is staging (its submit never finished), done, or canceled
            with every row final.
    """
    batch = deps.ledger.get_batch(batch_id)
    if batch.state is BatchState.STAGING:
        raise InputError(f"batch {batch_id} was never opened (its submit did not finish)")
    if not _unfinished(batch):
        raise InputError(f"batch {batch_id} is {batch.state.value}: nothing to resume")
    options = RowOptions.from_message(batch.options)
    return batch, _enqueue_pending(deps, batch, enqueue, options)


def sweep_stalled(deps: Deps, enqueue: Enqueue, *, stall: float) -> list[str]:
    """Resume every open (or canceled) batch that has unfinished rows and that no worker has
    started a chunk of for ``stall`` seconds; return their ids.

    Call it only when the queue is empty: then such a batch has lost its messages (the
    broker can drop one caught by a Redis restart), since a parked or delayed chunk comes
    back well within the broker's visibility timeout, which is what ``stall`` should be.
    One caller per batch and per ``stall`` window does it (``Ledger.claim_sweep``).
    """
    now = deps.ledger.now()
    swept = []
    for batch in deps.ledger.list_batches(limit=RESUME_LOOKBACK):
        if not _unfinished(batch):
            continue
        if now - max(batch.created_at, batch.touched_at or 0.0) < stall:
            continue
        if not deps.ledger.claim_sweep(batch.id, stall):
            continue
        _, rows = resume(deps, batch.id, enqueue)
        log.warning(
            "batch %s: no chunk started for %.0f s and the queue is empty; %d rows enqueued again",
            batch.id,
            stall,
            rows,
        )
        swept.append(batch.id)
    return swept


def _unfinished(batch: BatchInfo) -> bool:
    """True for an open or canceled batch with rows not final yet (what resume may send)."""
    active = batch.state in (BatchState.OPEN, BatchState.CANCELED)
    return active and batch.terminal < batch.total


def open_csv_batch(deps: Deps, digest: str, account: str | None) -> BatchInfo | None:
    """The newest open batch submitted from a file with this content digest, if any."""
    for batch in deps.ledger.list_batches(limit=RESUME_LOOKBACK):
        same = (batch.kind, batch.digest, batch.account) == ("csv", digest, account)
        if same and batch.state is BatchState.OPEN:
            return batch
    return None


def _enqueue_pending(
    deps: Deps, batch: BatchInfo, enqueue: Enqueue, row_options: RowOptions
) -> int:
    largest = deps.settings.chunk_size
    pending = deps.ledger.pending_rows(batch.id)
    rows = 0
    together = getattr(enqueue, "together", None)
    with together() if together is not None else contextlib.nullcontext():
        for chunk in cut_chunks(pending, batch.total - batch.terminal, largest):
            enqueue(batch.id, chunk, row_options)
            rows += len(chunk)
    return rows


def read_digest(path: Path) -> str:
    """The file's content digest (what finds its open batch); CsvFileError if unreadable."""
    try:
        return file_digest(path)
    except OSError as exc:
        raise CsvFileError(f"cannot read {path}: {exc.strerror or exc}") from None


def _new_rows(
    batch_id: str, parsed: Iterator[ParsedRow], default_account: str | None
) -> Iterator[NewRow]:
    for item in parsed:
        account = item.account or default_account
        if item.params is None or item.error is not None:
            reason = item.error.reason if item.error else "invalid row"
            column = item.error.column if item.error else None
            # The input cells are kept so that ``failures`` gives the row back as it was, but
            # for a Stripe key pasted in one: it is stored nowhere.
            raw = {name: hide_secret_keys(cell) for name, cell in item.raw.items()}
            yield NewRow(
                item.row,
                hide_secret_keys(item.session_id),
                account,
                None,
                rejection=(column, reason),
                extra={"raw": raw},
            )
            continue
        yield NewRow(
            row=item.row,
            session_id=item.session_id,
            account=account,
            params=item.params,  # the row's key is derived (model.update.row_key)
        )


def hide_secret_keys(text: str) -> str:
    """``text`` with anything shaped like a Stripe secret key replaced by the key scrub's mark."""
    return SECRET_KEY.sub(MARK, text) if holds_secret_key(text) else text


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

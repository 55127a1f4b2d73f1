"""Celery tasks: thin edges that take ids and plain lists and call the domain functions.

A warm shutdown (SIGTERM: ``docker stop``, a deploy) lets each running chunk finish the row
it is on, then give the rest back (enqueued again before its message is acked), so that a
worker stops within one row's time rather than a whole chunk's (up to ``task_budget``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import redis
from celery import Task
from celery.signals import task_received, worker_ready, worker_shutdown, worker_shutting_down

from vsbatch.bootstrap import is_refusal, redis_refusal
from vsbatch.errors import NotFoundError, RedisRefused
from vsbatch.model.row import BatchState
from vsbatch.store.liveness import HeldChunk
from vsbatch.worker import process_row as processing
from vsbatch.worker.celery_app import (
    QUEUE,
    app,
    current_deps,
    heartbeat,
    stop_heartbeat,
    task_budget,
)
from vsbatch.worker.messages import (
    CheckedTask,
    ChunkArgs,
    InvalidArguments,
    TickArgs,
    check_arguments,
)
from vsbatch.worker.row_options import RowOptions


class _ChunkTask(CheckedTask):
    """Chunk messages are recorded as held on receipt (``_hold_chunk``): a refused one is
    released at once, so that no live worker ever sends it again."""

    def on_refused(self) -> None:
        if self.request.id:
            heartbeat(enqueue_chunk).liveness.release(self.request.id)


@app.task(
    name="vsbatch.process_chunk",
    base=_ChunkTask,
    arguments=ChunkArgs,
    acks_late=True,
    ignore_result=True,
    bind=True,
    throws=(RedisRefused,),  # expected: logged as one line, without a traceback
)
def process_chunk(
    self: Task[Any, Any], batch_id: str, rows: list[int], options: dict[str, Any] | None = None
) -> int:
    """Bring a chunk of a batch's rows to terminal outcomes; re-enqueue what is left."""
    deps = current_deps()
    try:
        # The batch is moving (an unknown one is never touched): its state and options.
        state, batch_options = deps.ledger.touch(batch_id)
        if state is BatchState.STAGING:  # its submit has not opened it (yet, or ever)
            raise InvalidArguments(f"batch {batch_id} is not open")
        # How rows are processed is the batch's, as its submit opened it; a message's own
        # options only serve batches opened before the ledger kept them.
        row_options = RowOptions.from_message(batch_options or options)
        result = processing.process_chunk(
            deps,
            batch_id,
            rows,
            options=row_options,
            budget=task_budget(deps.settings),
            stop=_stopping.is_set,
        )
    except NotFoundError as exc:  # a batch or row the ledger does not have (or no longer)
        raise InvalidArguments(str(exc)) from None
    except redis.ResponseError as exc:
        if not is_refusal(exc):
            raise
        raise RedisRefused(str(redis_refusal(exc, then="this chunk runs again"))) from None
    # Enqueued before this message is acked: a crash in between runs rows twice, which the
    # ledger and the idempotency keys make harmless.
    if result.remaining:
        enqueue_chunk(batch_id, result.remaining, row_options)
    for delay, rows_later in result.later.items():
        enqueue_chunk(batch_id, rows_later, row_options, countdown=delay)
    if self.request.id:
        heartbeat(enqueue_chunk).liveness.release(self.request.id)
    return len(result.finished)


@task_received.connect
def _hold_chunk(request: Any, **_: Any) -> None:
    """A chunk message reached this worker (to run now or at its countdown): record it, so
    that live workers send it again if this process dies holding it (see ``liveness``)."""
    if request.name != process_chunk.name:
        return
    try:
        checked = check_arguments(ChunkArgs, process_chunk.run, request.args, request.kwargs)
    except InvalidArguments:
        return  # the task refuses it when it runs; nothing to hold for it
    chunk = HeldChunk(checked["batch_id"], checked["rows"], checked.get("options") or {})
    heartbeat(enqueue_chunk).liveness.hold(request.id, chunk)


@worker_ready.connect
def _start_beating(**_: Any) -> None:
    """Beat from the start: a fresh worker takes over a dead one's chunks even when the
    queue is empty (they may be all that is left of a batch)."""
    _stopping.clear()
    heartbeat(enqueue_chunk)


_stopping = threading.Event()  # set once this worker's warm (or cold) shutdown begins


@worker_shutting_down.connect
def _stop_taking_rows(**_: Any) -> None:
    """Running chunks end after their current row; the rest is enqueued again."""
    _stopping.set()


@worker_shutdown.connect
def _leave(**_: Any) -> None:
    stop_heartbeat()


# Messages one pipeline to the broker carries inside ``ChunkSender.together``.
SEND_BATCH = 500
# The producer whose publish batch this thread is inside (``ChunkSender.together``), if any,
# and whether the queue was declared in it already.
_PRODUCER: ContextVar[list[Any] | None] = ContextVar("vsbatch_chunk_producer", default=None)


class ChunkSender:
    """Sends chunk messages: the producer's ``Enqueue`` (the module's ``enqueue_chunk``)."""

    def __call__(
        self,
        batch_id: str,
        rows: list[int],
        options: RowOptions,
        *,
        countdown: float | None = None,
    ) -> None:
        """Send one chunk message (inside :meth:`together`, with the messages around it)."""
        # countdown 0 sends a plain message (no ETA). The shown arguments (argsrepr, for logs
        # and monitors) name the rows' span instead of repeating the list: a third of the
        # message, which waits in Redis as long as the rows do.
        extra: dict[str, Any] = {"argsrepr": shown_arguments(batch_id, rows)}  # not in stubs
        batch = _PRODUCER.get()
        if batch is not None:
            extra["producer"] = batch[0]
            if batch[1]:  # declared by the batch's first message: kombu copies the queue
                extra["declare"] = []  # object to declare it again, for every message
            batch[1] = True
        process_chunk.apply_async(
            (batch_id, list(rows), options.to_message()),
            queue=QUEUE,
            countdown=countdown or 0.0,
            **extra,
        )

    @contextmanager
    def together(self) -> Iterator[None]:
        """Messages this thread sends in the block go in pipelines of ``SEND_BATCH``.

        A million-row batch is some ten thousand messages: one round trip each would be a
        good part of its submit. The block's last messages are sent when it ends; an error
        inside it drops those not sent yet (``resume`` sends a batch's unfinished rows again).
        """
        with app.producer_or_acquire() as producer, producer.batch(SEND_BATCH):
            token = _PRODUCER.set([producer, False])
            try:
                yield
            finally:
                _PRODUCER.reset(token)


enqueue_chunk = ChunkSender()


def shown_arguments(batch_id: str, rows: Sequence[int]) -> str:
    """A chunk message's arguments as logs show them: the batch and its rows' span."""
    span = f"{rows[0]}..{rows[-1]}" if rows else ""
    return f"({batch_id!r}, <{len(rows)} rows {span}>)"


@app.task(
    name="vsbatch.migration_tick",
    base=CheckedTask,
    arguments=TickArgs,
    acks_late=True,
    ignore_result=True,
)
def migration_tick(name: str) -> str | None:
    """Run migration ``name`` of this worker's own migrations file for its due tick, once."""
    from vsbatch.migrations.run import run_tick

    batch = run_tick(current_deps(), name, enqueue_chunk)
    return batch.id if batch is not None else None

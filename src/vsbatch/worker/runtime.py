"""Running vsbatch on one machine: the embedded Redis when none is configured, and
in-process Celery workers for ``vsbatch run`` and ``vsbatch demo``.

A second command (``status`` in another terminal, ``worker`` beside ``beat``) joins the
running embedded server instead of starting a second one on the same append-only file (see
``local_redis``).

Celery is imported where workers start: commands that only use the ledger (``status``,
``report``, ``failures``, ``cancel``: :func:`ledger_for`) start without it, and a plain
``status`` (:func:`reader_for`) without redis-py either (see ``store.resp``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from vsbatch.config import Settings
from vsbatch.errors import VsbatchError
from vsbatch.model.row import BatchInfo
from vsbatch.store import local_redis
from vsbatch.store.local_redis import LocalRedis
from vsbatch.store.refusals import redis_refusal

if TYPE_CHECKING:  # bootstrap and the ledger import redis-py, which reader_for avoids
    from rich.console import Console

    from vsbatch.bootstrap import Deps
    from vsbatch.store.ledger import Ledger
    from vsbatch.store.ledger_reader import LedgerReader, ReadClient


@contextlib.contextmanager
def redis_for(settings: Settings) -> Iterator[Settings]:
    """Settings with a usable ``redis_url``: the configured one, or the embedded server.

    The embedded server is shared through ``local_redis``: this process starts it, or
    attaches to the one another vsbatch process runs on the same data directory.
    """
    if settings.redis_url:
        yield settings
        return
    with embedded_for(settings) as local:
        yield settings.model_copy(update={"redis_url": local.url})


def embedded_for(settings: Settings) -> LocalRedis:
    """The (unopened) share of the embedded server of ``settings.data_dir``."""
    return local_redis.share_for(settings)


@contextlib.contextmanager
def ledger_for(settings: Settings) -> Iterator[Ledger]:
    """The ledger on the settings' Redis (embedded if needed), for commands that need no more."""
    from vsbatch.bootstrap import connect, ledger_on

    with redis_for(settings) as resolved:
        client = connect(resolved)
        try:
            yield ledger_on(client, resolved)
        finally:
            client.close()


@contextlib.contextmanager
def reader_for(settings: Settings) -> Iterator[LedgerReader[Any]]:
    """The ledger's reads on the settings' Redis (embedded if needed), for a quick look.

    Through :class:`~vsbatch.store.resp.RespClient` when it speaks the URL (``status`` starts
    without redis-py), through redis-py otherwise; both are checked as ``connect`` checks.
    """
    from vsbatch.store import resp
    from vsbatch.store.ledger_reader import LedgerReader

    with redis_for(settings) as resolved:
        client: ReadClient | None = resp.connect(resolved.redis_url or "")
        if client is None:
            from vsbatch.bootstrap import connect

            client = connect(resolved)
        try:
            yield LedgerReader(client)
        finally:
            client.close()


@contextlib.contextmanager
def deps_for(settings: Settings, *, patient: bool = True) -> Iterator[Deps]:
    """Dependencies on the settings' Redis (embedded if needed), closed afterwards; with
    ``patient=False`` Redis commands give up within a second when it is gone (``web``)."""
    from vsbatch.bootstrap import bootstrap
    from vsbatch.worker.celery_app import configure, install_deps

    with redis_for(settings) as resolved:
        deps = bootstrap(resolved, patient=patient)
        configure(resolved)
        install_deps(deps)
        try:
            yield deps
        finally:
            deps.close()


class InProcessWorker:
    """A Celery worker (threads pool) running in a background thread of this process."""

    def __init__(self, concurrency: int) -> None:
        from celery.worker import WorkController

        from vsbatch.worker.celery_app import QUEUE, app

        self._controller = WorkController(
            app=app,
            pool_cls="threads",
            concurrency=concurrency,
            queues=[QUEUE],
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
            loglevel="WARNING",
            hostname=f"vsbatch-inprocess-{os.getpid()}@localhost",
        )
        self._thread = threading.Thread(
            target=self._controller.start, name="vsbatch-worker", daemon=True
        )
        # ``run`` itself says when Redis refuses writes (and stops): a worker's "polls again on
        # its own" line would only contradict it.
        logging.getLogger("vsbatch.worker.broker").setLevel(logging.ERROR)

    def start(self) -> InProcessWorker:
        """Start beating (see ``liveness``) and consuming."""
        from vsbatch.worker.celery_app import heartbeat
        from vsbatch.worker.tasks import enqueue_chunk

        heartbeat(enqueue_chunk)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop consuming; a task in flight keeps its message (acks_late) for redelivery.

        Waits at most ``timeout`` seconds for the tasks in flight.
        """
        from vsbatch.worker.celery_app import stop_heartbeat

        self._controller.stop(in_sighandler=False)
        self._thread.join(timeout=timeout)
        stop_heartbeat()

    def alive(self) -> bool:
        """True while the worker runs (Celery ends it on an error it cannot recover from)."""
        return self._thread.is_alive()


class Interrupted(KeyboardInterrupt):
    """Ctrl-C while in-process workers ran: the user has been told how to resume.

    Rows in flight are left to the ledger (``resume`` enqueues them again), so the process
    may exit at once, without waiting for worker threads.
    """


def _exit_at_once(*_: object) -> None:
    """The second Ctrl-C: exit now (a server we alone use is asked to stop on its way)."""
    local_redis.abandon_all()
    os._exit(130)


def _abandon_run(batch_id: str, console: Console) -> None:
    """The first Ctrl-C: say how to resume, make a second one exit at once, then go quiet."""
    signal.signal(signal.SIGINT, _exit_at_once)
    console.print(
        f"interrupted: nothing is lost; 'vsbatch resume {batch_id}' (or 'vsbatch run' of the"
        " same file) finishes the batch",
        highlight=False,
        soft_wrap=True,
    )
    # Rows in flight stop abruptly from here on (their connections close under them); their
    # errors would bury the line above, and the ledger already knows what is unfinished.
    logging.disable(logging.CRITICAL)
    threading.excepthook = lambda _args: None


def work_until_done(
    deps: Deps, batch_id: str, console: Console, *, latency: float | None = None
) -> BatchInfo:
    """Apply a batch with in-process workers, showing progress until every row is final.

    The worker starts only once the batch is enqueued: a refused file never starts one. Its
    threads are ``VSBATCH_CONCURRENCY``, or sized for the rate and ``latency`` (a measured
    round trip, seconds; see ``sizing``).
    """
    import redis

    from vsbatch.cli.progress import wait_for_batch
    from vsbatch.worker.sizing import worker_threads

    worker = InProcessWorker(worker_threads(deps.settings, latency)).start()
    try:
        batch = wait_for_batch(
            deps.ledger, batch_id, console, check=_progress_possible(deps, batch_id, worker)
        )
    except KeyboardInterrupt:
        _abandon_run(batch_id, console)
        _stop_soon(worker)
        raise Interrupted from None
    except (VsbatchError, redis.ResponseError) as exc:
        # Redis refuses writes, or the workers stopped: the rows stay unfinished, resumable.
        logging.disable(logging.CRITICAL)  # the workers' errors would bury the one line
        _stop_soon(worker)
        if isinstance(exc, redis.ResponseError):  # refused while reading progress
            raise redis_refusal(exc, then=_resume(batch_id)) from None
        raise
    worker.stop()
    return batch


def _resume(batch_id: str) -> str:
    return f"'vsbatch resume {batch_id}' finishes the batch (nothing is lost)"


def _stop_soon(worker: InProcessWorker) -> None:
    """Stop the workers beside us: a task's chunk may take long to finish, and we must not."""
    stopper = threading.Thread(target=worker.stop, kwargs={"timeout": 2.0}, daemon=True)
    stopper.start()
    stopper.join(timeout=3.0)


def _progress_possible(deps: Deps, batch_id: str, worker: InProcessWorker) -> Callable[[], None]:
    """The wait's check: Redis still accepts writes, and the in-process workers still run.

    Without it, a Redis that refuses writes (``MISCONF``: its disk is full) would leave
    ``run`` waiting for ever on rows no worker can finish.
    """
    import redis

    resume = _resume(batch_id)

    def check() -> None:
        try:
            deps.redis.set(deps.ledger.keys.writable, "1", px=60_000)
        except redis.ResponseError as exc:
            raise redis_refusal(exc, then=resume) from None
        if not worker.alive():
            raise VsbatchError(f"the in-process workers stopped (see the log above); {resume}")

    return check

"""Running vsbatch on one machine: the embedded Redis when none is configured, and
in-process Celery workers for ``vsbatch run`` and ``vsbatch demo``.

The embedded server's address is kept in ``<data_dir>/redis/server.json`` so that a second
command (``status`` in another terminal, ``report`` after a run) joins the running server
instead of starting a second one on the same append-only file.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import redis
from celery.worker import WorkController
from rich.console import Console

from vsbatch.bootstrap import Deps, bootstrap
from vsbatch.config import Settings
from vsbatch.embedded_redis import EmbeddedRedis
from vsbatch.ledger import BatchInfo
from vsbatch.progress import wait_for_batch
from vsbatch.tasks import enqueue_chunk
from vsbatch.worker import QUEUE, app, configure, heartbeat, install_deps, stop_heartbeat


def _live_server(state_file: Path) -> str | None:
    """The URL of an embedded server another vsbatch process runs on this data dir, if any."""
    try:
        info = json.loads(state_file.read_text())
        os.kill(int(info["pid"]), 0)
        url = str(info["url"])
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
        return url
    except (OSError, ValueError, KeyError, redis.RedisError):
        return None


@contextlib.contextmanager
def redis_for(settings: Settings) -> Iterator[Settings]:
    """Settings with a usable ``redis_url``: the configured one, or an embedded server."""
    if settings.redis_url:
        yield settings
        return
    data = settings.data_dir / "redis"
    state_file = data / "server.json"
    url = _live_server(state_file)
    if url is not None:
        yield settings.model_copy(update={"redis_url": url})
        return
    server = EmbeddedRedis(data).start()
    state_file.write_text(json.dumps({"url": server.url, "pid": os.getpid()}))
    try:
        yield settings.model_copy(update={"redis_url": server.url})
    finally:
        state_file.unlink(missing_ok=True)
        server.stop()


@contextlib.contextmanager
def deps_for(settings: Settings) -> Iterator[Deps]:
    """Dependencies on the settings' Redis (embedded if needed), closed afterwards."""
    with redis_for(settings) as resolved:
        deps = bootstrap(resolved)
        configure(resolved)
        install_deps(deps)
        try:
            yield deps
        finally:
            deps.close()


class InProcessWorker:
    """A Celery worker (threads pool) running in a background thread of this process."""

    def __init__(self, concurrency: int) -> None:
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

    def start(self) -> InProcessWorker:
        """Start beating (see ``liveness``) and consuming."""
        heartbeat(enqueue_chunk)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop consuming; a task in flight keeps its message (acks_late) for redelivery."""
        self._controller.stop(in_sighandler=False)
        self._thread.join(timeout=10)
        stop_heartbeat()


def work_until_done(deps: Deps, batch_id: str, console: Console) -> BatchInfo:
    """Apply a batch with in-process workers, showing progress until every row is final.

    The worker starts only once the batch is enqueued: a refused file never starts one.
    """
    worker = InProcessWorker(deps.settings.concurrency).start()
    try:
        return wait_for_batch(deps.ledger, batch_id, console)
    finally:
        worker.stop()

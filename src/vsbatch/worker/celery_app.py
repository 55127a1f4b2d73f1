"""The Celery application and its reliability settings; nothing else knows about Celery
except ``tasks`` (the task edge) and the CLI (which starts workers).

Reliability choices: late acks with rejection on worker loss (a crashed worker's message is
redelivered), prefetch 1 (a worker holds no more than it runs), JSON only (a pickled message
is refused, never executed; so is a message of an unknown task or with arguments that fail
their check, see ``messages``), and a broker visibility timeout far above a task's time budget
(tasks stop at a third of it and re-enqueue what is left). It also owns this process's
heartbeat (``liveness``), which lets live workers take over a dead one's chunks and locks
within seconds rather than after the visibility timeout.

The broker is the ledger's Redis unless ``VSBATCH_BROKER_URL`` names another: a Redis or
Sentinel set (this package's hardened transports, ``broker``) or RabbitMQ (a quorum queue);
:func:`broker_options` holds what each needs (docs/redis.md).
"""

from __future__ import annotations

import contextlib
import functools
import ssl
import threading
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import redis
from celery import Celery
from kombu import Exchange, Queue
from kombu.exceptions import ChannelError, OperationalError

from vsbatch.bootstrap import Deps, bootstrap
from vsbatch.config import Settings, load_settings
from vsbatch.intake.stage import Enqueue, sweep_stalled
from vsbatch.ops.health import touch
from vsbatch.results.archiver import ArchiveDuty
from vsbatch.store.liveness import Heartbeat, HeldChunk, Liveness, new_node_id
from vsbatch.worker.broker import transport_for
from vsbatch.worker.row_options import RowOptions
from vsbatch.worker.sizing import worker_threads

QUEUE = "vsbatch"

app = Celery("vsbatch", include=["vsbatch.worker.tasks"])
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    broker_connection_max_retries=None,
    worker_hijack_root_logger=False,
    worker_send_task_events=False,
    task_send_sent_event=False,
    worker_enable_remote_control=False,
    # One-line refusals for unknown, invalid and undecodable messages (see ``messages``).
    worker_consumer="vsbatch.worker.messages:GuardedConsumer",
)

_deps: Deps | None = None
_deps_lock = threading.Lock()


def configure(settings: Settings) -> Celery:
    """Point the app at the settings' broker (``VSBATCH_BROKER_URL``, else the ledger's Redis)
    with the transport options that broker needs (see ``broker_options``)."""
    broker = broker_url(settings)
    previous = app.conf.broker_url
    if previous and previous != broker:
        # Celery keeps its connection and producer pools from the first send; a process that
        # moves to another broker (tests, the demo after a run) must drop them or it would
        # keep publishing to the old server.
        app._pool = None  # type: ignore[attr-defined]
        amqp = app.__dict__.get("amqp")
        if amqp is not None:
            amqp._producer_pool = None
    app.conf.update(
        broker_url=broker,
        broker_pool_limit=max(10, worker_threads(settings) + 2),
        **broker_options(settings, broker),
    )
    amqp = app.__dict__.get("amqp")
    for cached in ("queues", "default_queue", "router"):  # built from task_queues on first use
        if amqp is not None:
            amqp.__dict__.pop(cached, None)
    return app


def broker_url(settings: Settings) -> str | None:
    """The broker's URL: ``VSBATCH_BROKER_URL``, or the ledger's Redis when it is unset."""
    return settings.broker_url or settings.redis_url


def broker_options(settings: Settings, broker: str | None) -> dict[str, Any]:
    """Celery's broker settings for ``broker``: transport, its options, TLS and the queue.

    Redis (and Sentinel): this package's hardened transport (``broker``), a visibility
    timeout far above a task's budget, and kombu's restore of a dead worker's messages at a
    quarter of it. RabbitMQ: a durable quorum queue (replicated, redelivered to another
    consumer as soon as a worker's connection drops, so no visibility timeout) on a topic
    exchange, which Celery's native delayed delivery needs for countdowns (a parked row) to
    wait in the broker rather than in a worker; publisher confirms, so a submitted chunk is
    in the queue when ``submit`` returns.
    """
    scheme = (broker or "").partition("://")[0].lower()
    if scheme in ("amqp", "amqps", "pyamqp"):
        queue = Queue(
            QUEUE,
            Exchange(QUEUE, type="topic"),
            routing_key=QUEUE,
            durable=True,
            queue_arguments={"x-queue-type": "quorum"},
        )
        return {
            "broker_transport": None,
            "broker_transport_options": {"confirm_publish": True},
            "broker_use_ssl": None,
            "task_queues": (queue,),
        }
    options: dict[str, Any] = {
        "visibility_timeout": settings.visibility_timeout,
        # Kombu sweeps for messages of dead workers every interval x throttle seconds (100 s
        # by default); sweep at a quarter of the visibility timeout instead, so a crashed
        # worker's chunk is back on the queue soon after it becomes visible.
        "unacked_restore_interval": max(1, min(10, settings.visibility_timeout // 4)),
        "unacked_restore_throttle": 1,
        "socket_connect_timeout": 5,
    }
    if scheme == "sentinel":
        options["master_name"] = settings.redis_sentinel_master
        secret = settings.redis_sentinel_password
        if secret is not None:
            options["sentinel_kwargs"] = {"password": secret.get_secret_value()}
    return {
        # Drops queue items that are not messages instead of stopping (see ``broker``).
        "broker_transport": transport_for(broker),
        "broker_transport_options": options,
        "broker_use_ssl": broker_ssl(broker),
        "task_queues": None,
    }


def queue_is_empty(deps: Deps) -> bool:
    """True when the chunk queue holds no message (False when the broker cannot tell now).

    On the ledger's Redis, one LLEN; on another broker, a passive declare of the queue.
    """
    settings = deps.settings
    if broker_url(settings) == settings.redis_url:
        return not deps.redis.llen(QUEUE)
    try:
        with app.connection_for_write() as connection:
            channel: Any = connection.default_channel
            declared = channel.queue_declare(QUEUE, passive=True)
    except ChannelError as exc:
        # 404: no such queue (RabbitMQ: not declared yet; Redis: an empty list is no key).
        return str(getattr(exc, "reply_code", "")) == "404"
    except (OSError, OperationalError, redis.RedisError):
        return False
    return not declared.message_count


_CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def broker_ssl(url: str | None) -> dict[str, Any] | None:
    """Celery's ``broker_use_ssl`` for a ``rediss://`` URL; None for plain ``redis://``.

    Kombu on its own would not verify the server's certificate for a bare ``rediss://`` URL,
    while redis-py does; this gives Celery the same choice as redis-py: certificates are
    required unless the URL says ``ssl_cert_reqs=none|optional``, and the URL's
    ``ssl_ca_certs``, ``ssl_certfile`` and ``ssl_keyfile`` apply to both.
    """
    if not url or urlsplit(url).scheme != "rediss":
        return None
    query = dict(parse_qsl(urlsplit(url).query))
    reqs = query.get("ssl_cert_reqs", "required").lower()
    options: dict[str, Any] = {"ssl_cert_reqs": _CERT_REQS.get(reqs, ssl.CERT_REQUIRED)}
    for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
        if query.get(name):
            options[name] = query[name]
    return options


def task_budget(settings: Settings) -> float:
    """How long one task may keep taking new rows: a third of the visibility timeout."""
    return settings.visibility_timeout / 3


def install_deps(deps: Deps) -> None:
    """Use these dependencies for tasks run by this process (the CLI and tests call this)."""
    global _deps
    with _deps_lock:
        _deps = deps


_NODE = new_node_id()
_heartbeat: tuple[Deps, Heartbeat] | None = None
_archive: ArchiveDuty | None = None  # this process's share of archiving (``VSBATCH_ARCHIVE``)
_heartbeat_lock = threading.Lock()


def heartbeat(enqueue: Enqueue) -> Heartbeat:
    """This process's heartbeat on the current dependencies, started on first use.

    A worker process beats from its start, or at the latest from the first chunk message it
    receives, before it records holding it (see ``liveness``). Each round, it sends a dead
    worker's chunks again with ``enqueue``; every quarter of a visibility timeout, if the
    queue is empty, it resumes batches stalled for that long (``submit.sweep_stalled``), and
    it starts a pass copying ended batches to the results store (``results.archiver``).
    """
    global _heartbeat, _archive
    deps = current_deps()
    with _heartbeat_lock:
        if _heartbeat is None or _heartbeat[0] is not deps:
            _retire(leave=False)  # built for dependencies since replaced
            settings = deps.settings
            liveness = Liveness(
                deps.redis,
                deps.ledger.keys,
                _NODE,
                interval=settings.heartbeat_seconds,
                retention=int(settings.ledger_retention_days * 86400),
            )

            def resend(chunk: HeldChunk) -> None:
                enqueue(chunk.batch_id, chunk.rows, RowOptions.from_message(chunk.options))

            archive = ArchiveDuty(deps.ledger, settings) if settings.archive else None

            def sweep() -> None:
                if archive is not None:  # first: a stalled sweep's error must not starve it
                    archive.poke()
                if queue_is_empty(deps):
                    sweep_stalled(deps, enqueue, stall=settings.visibility_timeout)

            health = settings.health_file
            beat = Heartbeat(
                liveness,
                resend,
                sweep,
                sweep_every=settings.visibility_timeout / 4,
                on_beat=functools.partial(touch, health) if health else None,
            )
            _heartbeat = (deps, beat.start())
            _archive = archive
            deps.locks.owner = _NODE  # only now: a lock names a node once that node beats
        return _heartbeat[1]


def stop_heartbeat() -> None:
    """A clean worker stop: stop beating and forget the chunks this process held."""
    with _heartbeat_lock:
        _retire(leave=True)


def _retire(*, leave: bool) -> None:
    """Stop the current heartbeat (caller holds ``_heartbeat_lock``)."""
    global _heartbeat, _archive
    if _heartbeat is None:
        return
    deps, beat = _heartbeat
    deps.locks.owner = None
    beat.stop()
    if _archive is not None:
        _archive.stop()
        _archive = None
    if leave:
        # Redis may refuse (a full disk) or be gone: then the heartbeat expires on its own
        # and live workers send this node's chunks again, as for a crashed one.
        with contextlib.suppress(redis.RedisError):
            beat.liveness.leave()
    _heartbeat = None


def current_deps() -> Deps:
    """This process's dependencies, built from the environment on first use if not installed.

    A worker started by plain ``celery -A vsbatch.worker.celery_app worker`` takes this path, and
    so does the application API. Without ``VSBATCH_REDIS_URL`` they use the data directory's
    embedded server (started if no other vsbatch process runs it).
    """
    global _deps
    with _deps_lock:
        if _deps is None:
            from vsbatch.store.local_redis import for_process

            settings = for_process(load_settings())
            configure(settings)
            _deps = bootstrap(settings)
        return _deps

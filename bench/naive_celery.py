"""The baseline a team would write first: one plain Celery task per row calling stripe-python.

Retries are Celery's (``autoretry_for=(Exception,)``, ``retry_backoff=True``, default
``max_retries=3``), the rate limit is Celery's per-worker ``rate_limit="100/s"``, messages are
acked early (Celery's default), and stripe-python adds its own random idempotency key per call
(so a Celery retry sends the update under a new key). The only additions are counters in
Redis, written from Celery signals, so that the bench knows when every task has ended.

Workers: ``celery -A bench.naive_celery worker --pool=threads -Q naive`` with
``NAIVE_BROKER_URL``, ``NAIVE_STRIPE_API_BASE``, ``NAIVE_STRIPE_API_KEY`` and
``NAIVE_HTTP_TIMEOUT`` in the environment (``NAIVE_RATE_LIMIT`` overrides ``100/s``; empty means
no Celery rate limit).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import redis
import stripe
from celery import Celery
from celery.signals import task_failure, task_retry, task_success

QUEUE = "naive"
OK, FAILED, RETRIES, TIMES = "naive:ok", "naive:failed", "naive:retries", "naive:times"
COUNTER_KEYS = (OK, FAILED, RETRIES, TIMES)

app = Celery("naive", broker=os.environ.get("NAIVE_BROKER_URL"))
app.conf.update(
    task_default_queue=QUEUE,
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

_local = threading.local()
_counters: redis.Redis | None = None


def configure(broker_url: str) -> None:
    """Point the producer side at a broker (the bench process sends the tasks).

    Celery keeps its connection and producer pools from the first send, so a move to another
    Redis (the next scenario's) drops them, as ``vsbatch.worker.celery_app.configure`` does.
    """
    if app.conf.broker_url != broker_url:
        app._pool = None  # type: ignore[attr-defined]
        amqp = app.__dict__.get("amqp")
        if amqp is not None:
            amqp._producer_pool = None
    app.conf.update(broker_url=broker_url)


def _client() -> stripe.StripeClient:
    """This thread's stripe-python client (the library's defaults, the bench's timeout)."""
    client: stripe.StripeClient | None = getattr(_local, "client", None)
    if client is None:
        timeout = float(os.environ.get("NAIVE_HTTP_TIMEOUT", "80"))
        client = stripe.StripeClient(
            os.environ["NAIVE_STRIPE_API_KEY"],
            base_addresses={"api": os.environ["NAIVE_STRIPE_API_BASE"]},
            http_client=stripe.RequestsClient(timeout=timeout),
        )
        _local.client = client
    return client


# The baseline uses Celery's per-worker rate limit; NAIVE_RATE_LIMIT="" runs the same
# task without one (the bench's second variant, see bench/throughput.py).
RATE_LIMIT = os.environ.get("NAIVE_RATE_LIMIT", "100/s") or None


@app.task(
    name="naive.update_session",
    autoretry_for=(Exception,),
    retry_backoff=True,
    rate_limit=RATE_LIMIT,
)
def update_session(session_id: str, params: dict[str, Any], account: str | None = None) -> None:
    """Update one VerificationSession; any exception retries the task with backoff."""
    options: dict[str, Any] = {"stripe_account": account} if account else {}
    _client().v1.identity.verification_sessions.update(
        session_id,
        params,  # type: ignore[arg-type]
        options,  # type: ignore[arg-type]
    )


def _record(key: str) -> None:
    global _counters
    if _counters is None:
        _counters = redis.Redis.from_url(os.environ["NAIVE_BROKER_URL"])
    pipe = _counters.pipeline(transaction=False)
    pipe.incr(key)
    if key != RETRIES:
        pipe.rpush(TIMES, repr(time.time()))
    pipe.execute()


def _ours(sender: Any) -> bool:
    return getattr(sender, "name", None) == "naive.update_session"


@task_success.connect
def _on_success(sender: Any = None, **_: Any) -> None:
    if _ours(sender):
        _record(OK)


@task_failure.connect
def _on_failure(sender: Any = None, **_: Any) -> None:
    if _ours(sender):
        _record(FAILED)


@task_retry.connect
def _on_retry(sender: Any = None, **_: Any) -> None:
    if _ours(sender):
        _record(RETRIES)

"""RabbitMQ as the broker while the ledger stays in Redis (``VSBATCH_BROKER_URL=amqp://...``).

Runs when a RabbitMQ answers on 127.0.0.1:5672 (the development machines run one, guest/guest)
and is skipped otherwise. Each test gets its own virtual host (``rabbitmqctl``, when this
process may run it; else the default one) so that nothing else's queues are touched.

The chunk queue is a durable quorum queue: RabbitMQ gives a message back as soon as the
connection of the worker holding it drops (no visibility timeout), and countdowns (a parked
row) wait in the broker's delay queues (Celery's native delayed delivery), not in a worker.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from amqp.exceptions import NotFound, PreconditionFailed
from kombu import Connection, Queue

from tests.e2e.conftest import settings_from, wait_done, worker_env
from tests.reliability.fault_cases import CASES, Case
from tests.reliability.harness import Rig, open_rig
from tests.reliability.test_fault_matrix import _csv, assert_invariants, run_case
from vsbatch.intake.stage import submit_csv
from vsbatch.worker.celery_app import QUEUE, configure
from vsbatch.worker.row_options import RowOptions
from vsbatch.worker.tasks import enqueue_chunk

pytestmark = pytest.mark.slow

RABBIT = ("127.0.0.1", 5672)


def _reachable() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(RABBIT, timeout=1.0):
        return True
    return False


def _rabbitmqctl(*args: str) -> bool:
    tool = shutil.which("rabbitmqctl")
    if tool is None:
        return False
    try:
        result = subprocess.run([tool, *args], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@pytest.fixture
def amqp_url() -> Iterator[str]:
    """A guest URL on a fresh virtual host of the local RabbitMQ (skip if none answers)."""
    if not _reachable():
        pytest.skip(f"no RabbitMQ on {RABBIT[0]}:{RABBIT[1]}: the broker tests need one")
    vhost = f"vsbatch-test-{uuid.uuid4().hex[:8]}"
    if _rabbitmqctl("add_vhost", vhost) and _rabbitmqctl(
        "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"
    ):
        try:
            yield f"amqp://guest:guest@{RABBIT[0]}:{RABBIT[1]}/{vhost}"
        finally:
            _rabbitmqctl("delete_vhost", vhost)
        return
    url = f"amqp://guest:guest@{RABBIT[0]}:{RABBIT[1]}//"
    _delete_queue(url)
    try:
        yield url
    finally:
        _delete_queue(url)


def _delete_queue(url: str) -> None:
    with Connection(url) as connection, contextlib.suppress(Exception):
        connection.default_channel.queue_delete(QUEUE)


@pytest.fixture
def rig(
    tmp_path: Path, emulator: Any, redis_url: str, amqp_url: str, request: pytest.FixtureRequest
) -> Iterator[Rig]:
    """The fault matrix's rig (a private Redis for the ledger) with RabbitMQ as the broker."""
    case: Case = CASES.get(getattr(request, "param", ""), Case())
    env = {**case.worker_env, "VSBATCH_BROKER_URL": amqp_url}
    try:
        with open_rig(tmp_path, emulator, env) as found:
            yield found
    finally:
        configure(settings_from(worker_env(redis_url, emulator.url)))


class TestRabbitMqBroker:
    def test_a_batch_runs_on_a_quorum_queue(self, rig: Rig, amqp_url: str) -> None:
        """Rows go through RabbitMQ, the ledger stays in Redis, every row ends exactly once;
        the chunk queue RabbitMQ holds is a quorum queue."""
        done = run_case(rig, Case())

        assert_invariants(rig, done)
        assert [] == rig.deps.redis.keys(QUEUE.encode())  # no queue in the ledger's Redis
        with (
            Connection(amqp_url) as connection,
            pytest.raises(PreconditionFailed, match="x-queue-type"),
        ):
            classic = Queue(QUEUE, queue_arguments={"x-queue-type": "classic"})
            classic.bind(connection.default_channel).declare()

    @pytest.mark.parametrize("rig", ["worker_sigkill"], indirect=True)
    def test_worker_sigkill(self, rig: Rig) -> None:
        """The fault matrix's worker-kill case on RabbitMQ: the killed worker's unacked
        messages come back at once, a fresh worker finishes, no session applied twice."""
        case = CASES["worker_sigkill"]

        done = run_case(rig, case)

        assert case.evidence is not None
        case.evidence(rig)
        assert_invariants(rig, done)

    def test_a_countdown_waits_in_the_broker(self, rig: Rig, amqp_url: str) -> None:
        """Chunks sent with a countdown (as a parked row's are) wait in the broker's delay
        queues, not in the chunk queue or a worker, and run once due: native delayed
        delivery on the quorum queue."""
        # Given a worker that has declared the delay exchanges
        rig.emulator.configure(seed=3, rate_limit=0, latency_ms=0)
        rig.ids = list(rig.emulator.seed(count=20))
        rig.workers.start(concurrency=4)
        _await_exchange(amqp_url, "celery_delayed_delivery")

        # When a batch's chunks are all sent with a 3 s countdown
        def later(batch_id: str, rows: list[int], options: RowOptions) -> None:
            enqueue_chunk(batch_id, rows, options, countdown=3.0)

        sent = time.monotonic()
        batch = submit_csv(rig.deps, _csv(rig.workers.log_dir, rig.ids), later)
        waiting = _delayed_messages(amqp_url)
        done = wait_done(rig.deps, batch.id, timeout=60)

        # Then they waited in the delay queues, ran after the countdown, each row once
        assert (0, True) == (waiting[QUEUE], 0 < sum(waiting.values()))
        assert 3.0 <= time.monotonic() - sent
        assert_invariants(rig, done)


def _await_exchange(url: str, name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    with Connection(url) as connection:
        while True:
            channel = connection.channel()
            try:
                channel.exchange_declare(name, "topic", passive=True)
                return
            except NotFound:
                assert time.monotonic() < deadline, f"no exchange {name} after {timeout}s"
                time.sleep(0.2)
            finally:
                with contextlib.suppress(Exception):
                    channel.close()


def _delayed_messages(url: str) -> dict[str, int]:
    """Messages in the chunk queue and in each of Celery's delay queues."""
    names = [QUEUE] + [f"celery_delayed_{level}" for level in range(28)]
    counts: dict[str, int] = {}
    with Connection(url) as connection:
        for name in names:
            channel = connection.channel()
            counts[name] = channel.queue_declare(name, passive=True).message_count
            channel.close()
    return counts

"""End-to-end fixtures: real ``vsbatch worker`` processes against the real Redis and emulator.

Workers run as subprocesses (so a test can SIGKILL one) with short timeouts and retry windows,
so that faults resolve within seconds.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import TEST_API_KEY
from tests.helpers import outside_env
from vsbatch.bootstrap import Deps, bootstrap
from vsbatch.config import Settings
from vsbatch.model.row import BatchInfo
from vsbatch.worker.celery_app import configure, install_deps

WORKER_ENV = {
    "VSBATCH_HTTP_TIMEOUT": "1.0",
    "VSBATCH_HTTP_CONNECT_TIMEOUT": "1.0",
    "VSBATCH_MAX_ATTEMPTS": "8",
    "VSBATCH_RETRY_MAX_SECONDS": "15",
    "VSBATCH_RETRY_INITIAL_WAIT": "0.05",
    "VSBATCH_RETRY_MAX_WAIT": "0.5",
    "VSBATCH_VISIBILITY_TIMEOUT": "12",
    "VSBATCH_SESSION_LOCK_TTL": "6",
    "VSBATCH_CHUNK_SIZE": "10",
    "VSBATCH_RATE_LIMIT": "200",
}


class Workers:
    """Starts and stops ``vsbatch worker`` subprocesses for one test."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, concurrency: int = 8, **extra_env: str) -> subprocess.Popen[bytes]:
        env = {**self.env, **extra_env, "VSBATCH_CONCURRENCY": str(concurrency)}
        with (self.log_dir / f"worker{len(self.procs)}.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "vsbatch", "worker", "--loglevel", "WARNING"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def worker_env(redis_url: str, emulator_url: str) -> dict[str, str]:
    """The environment a worker (or the producer) needs: Redis, the emulator, the test key."""
    return {
        **outside_env(),
        **WORKER_ENV,
        "VSBATCH_REDIS_URL": redis_url,
        "VSBATCH_STRIPE_API_BASE": emulator_url,
        "VSBATCH_STRIPE_API_KEY": TEST_API_KEY,
    }


@pytest.fixture
def env(redis_url: str, emulator: Any, redis_client: redis.Redis, tmp_path: Path) -> dict[str, str]:
    """Worker environment against a flushed Redis and a reset emulator (the results store,
    which workers archive ended batches to, in the test's own data directory)."""
    return {**worker_env(redis_url, emulator.url), "VSBATCH_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def workers(env: dict[str, str], tmp_path: Path) -> Iterator[Workers]:
    """Worker subprocesses, all stopped after the test (logs under tmp_path)."""
    pool = Workers(env, tmp_path)
    try:
        yield pool
    finally:
        pool.stop_all()


def settings_from(env: dict[str, str], **overrides: Any) -> Settings:
    """Producer-side settings equal to what the workers read from ``env``."""
    values = {k[len("VSBATCH_") :].lower(): v for k, v in env.items() if k.startswith("VSBATCH_")}
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def producer(env: dict[str, str]) -> Iterator[Deps]:
    """Producer-side dependencies (the test process submits and reads the ledger)."""
    settings = settings_from(env)
    configure(settings)
    deps = bootstrap(settings)
    install_deps(deps)
    try:
        yield deps
    finally:
        deps.close()


def wait_done(
    deps: Deps,
    batch_id: str,
    timeout: float = 90.0,
    poll: Callable[[BatchInfo], None] | None = None,
) -> BatchInfo:
    """Poll the ledger until every row of the batch is terminal, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        batch = deps.ledger.get_batch(batch_id)
        if poll is not None:
            poll(batch)
        if batch.terminal >= batch.total:
            return batch
        if time.monotonic() > deadline:
            raise AssertionError(f"batch not done after {timeout}s: {batch.counts}")
        time.sleep(0.2)

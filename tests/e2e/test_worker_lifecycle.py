"""What a container runtime sees of a worker and of beat: a warm shutdown (SIGTERM) that ends
within one row's time, and a health file that stays fresh while the process does its work."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from tests.e2e.conftest import Workers, wait_done
from tests.helpers import metadata_csv
from vsbatch.bootstrap import Deps
from vsbatch.intake.stage import submit_csv
from vsbatch.model.row import Outcome
from vsbatch.worker.row_options import RowOptions
from vsbatch.worker.tasks import enqueue_chunk

ROOT = Path(__file__).resolve().parents[2]


def _await(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout}s for {what}"
        time.sleep(0.05)


def _healthy(path: Path, max_age: float) -> int:
    """Exit code of the healthcheck the compose file runs."""
    args = [sys.executable, "-m", "vsbatch.ops.health", str(path), str(max_age)]
    return subprocess.run(args, capture_output=True, timeout=30).returncode


class TestWarmShutdown:
    def test_a_stopping_worker_gives_back_the_rest_of_its_chunk(
        self, emulator: Any, workers: Workers, producer: Deps, tmp_path: Path
    ) -> None:
        """SIGTERM mid-chunk: the worker finishes its current row and exits within seconds
        (not after the chunk's 60 rows); another worker finishes the rest, each row once."""
        # Given one worker thread on one 60-row chunk at 300 ms a row (18 s of work, within
        # the task's budget: a third of the production visibility timeout)
        emulator.configure(latency_ms=300, rate_limit=0)
        ids = list(emulator.seed(count=60))
        chunks: list[list[int]] = []
        batch = submit_csv(
            producer, metadata_csv(tmp_path / "in.csv", ids), lambda _b, r, _o: chunks.append(r)
        )
        enqueue_chunk(batch.id, [row for chunk in chunks for row in chunk], RowOptions())
        first = workers.start(concurrency=1, VSBATCH_VISIBILITY_TIMEOUT="600")
        _await(lambda: producer.ledger.get_batch(batch.id).terminal >= 3, "rows to finish")

        # When it is told to stop (docker stop, a deploy)
        stopped = time.monotonic()
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)
        took = time.monotonic() - stopped
        left = producer.ledger.get_batch(batch.id)
        workers.start(concurrency=4)
        done = wait_done(producer, batch.id, timeout=90)

        # Then it left within a few rows' time, with most of the chunk undone, which the
        # next worker finished: every row succeeded, every session updated once
        assert (0, True) == (first.returncode, took < 8.0), took
        assert left.terminal < 30
        outcomes = {r.outcome for r in producer.ledger.iter_rows(done.id)}
        assert {Outcome.SUCCEEDED} == outcomes
        assert {1} == set(emulator.stats()["applied"].values())


class TestHealthFiles:
    def test_a_worker_keeps_its_health_file_fresh_while_it_beats(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        """Fresh while the worker beats; stale once it is frozen; fresh again after."""
        # Given a worker that beats every 0.2 s and touches its health file each time
        health = tmp_path / "alive"
        pool = Workers({**env, "VSBATCH_HEARTBEAT_SECONDS": "0.2"}, tmp_path)
        proc = pool.start(VSBATCH_HEALTH_FILE=str(health))
        try:
            _await(lambda: _healthy(health, 1.0) == 0, "the worker's health file")

            # When it is frozen past the healthcheck's limit
            proc.send_signal(signal.SIGSTOP)
            time.sleep(1.5)
            frozen = _healthy(health, 1.0)
            proc.send_signal(signal.SIGCONT)

            # Then the healthcheck failed while frozen, and passes again once it runs
            assert 1 == frozen
            _await(lambda: _healthy(health, 1.0) == 0, "the worker to beat again")
        finally:
            proc.send_signal(signal.SIGCONT)
            pool.stop_all()

    def test_beat_touches_its_health_file_on_every_tick(
        self, env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
    ) -> None:
        """``vsbatch beat`` with VSBATCH_HEALTH_FILE keeps it fresh (a tick every 5 s or less,
        even when nothing is due for hours)."""
        health = tmp_path / "beat-alive"
        command = [sys.executable, "-m", "vsbatch", "beat", "--file"]
        command += [str(ROOT / "examples" / "migrations.toml"), "--loglevel", "WARNING"]
        with (tmp_path / "beat.log").open("wb") as log:
            proc = subprocess.Popen(
                command,
                env={**env, "VSBATCH_HEALTH_FILE": str(health)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _await(lambda: _healthy(health, 6.0) == 0, "beat's health file")
            first = health.stat().st_mtime
            _await(lambda: health.stat().st_mtime > first, "a second tick", timeout=15)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)

"""Crashes and faults: every row ends terminal exactly once and nothing is applied twice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Workers, settings_from, wait_done, worker_env
from tests.helpers import metadata_csv
from vsbatch.bootstrap import bootstrap
from vsbatch.intake.stage import submit_csv
from vsbatch.model.row import TERMINAL, BatchInfo, Outcome
from vsbatch.store.embedded_redis import EmbeddedRedis
from vsbatch.worker.celery_app import configure, install_deps
from vsbatch.worker.tasks import enqueue_chunk


def _csv(tmp_path: Path, ids: list[str]) -> Path:
    return metadata_csv(tmp_path / "in.csv", ids, "metadata.batch", "crash")


def _assert_exactly_once(deps: Any, batch: BatchInfo, emulator: Any, ids: list[str]) -> None:
    rows = list(deps.ledger.iter_rows(batch.id))
    assert len(ids) == len(rows) == batch.total
    assert all(r.outcome in TERMINAL for r in rows)
    assert batch.total == sum(batch.counts.get(o, 0) for o in TERMINAL)
    applied = emulator.stats()["applied"]
    assert [] == [sid for sid in ids if applied.get(sid, 0) > 1]
    others = [
        (r.row, r.outcome, r.reason, r.error_code, r.attempts)
        for r in rows
        if r.outcome != Outcome.SUCCEEDED
    ]
    assert [] == others
    assert set(ids) == set(applied)


def _sigkill_midway(
    emulator: Any,
    workers: Workers,
    producer: Any,
    tmp_path: Path,
    *,
    rows: int,
    timeout: float,
    **env: str,
) -> None:
    """SIGKILL the only worker a third of the way through ``rows``, start a fresh one, and
    check that the batch ends within ``timeout`` with exactly-once outcomes and effects."""
    emulator.configure(latency_ms=40)
    ids = list(emulator.seed(count=rows))
    first = workers.start(concurrency=8, **env)
    batch = submit_csv(producer, _csv(tmp_path, ids), enqueue_chunk)

    def kill_midway(info: BatchInfo) -> None:
        if first.poll() is None and info.terminal >= rows // 3:
            workers.kill(first)
            workers.start(concurrency=8, **env)

    done = wait_done(producer, batch.id, timeout=timeout, poll=kill_midway)

    assert first.returncode == -9
    _assert_exactly_once(producer, done, emulator, ids)


class TestCrashSafety:
    def test_sigkill_mid_batch_then_fresh_worker_finishes(
        self, emulator: Any, workers: Workers, producer: Any, tmp_path: Path
    ) -> None:
        """A worker SIGKILLed in the middle of 500 rows; a fresh worker finishes the batch."""
        _sigkill_midway(emulator, workers, producer, tmp_path, rows=500, timeout=120)

    def test_dead_workers_chunks_come_back_long_before_the_visibility_timeout(
        self, emulator: Any, workers: Workers, producer: Any, tmp_path: Path
    ) -> None:
        """With a 600 s visibility timeout and 120 s session locks, a SIGKILLed worker's chunks
        are sent again, and its locks taken over, once its heartbeat expires (1.5 s here)."""
        _sigkill_midway(
            emulator,
            workers,
            producer,
            tmp_path,
            rows=300,
            timeout=60,
            VSBATCH_VISIBILITY_TIMEOUT="600",
            VSBATCH_SESSION_LOCK_TTL="120",
            VSBATCH_HEARTBEAT_SECONDS="0.5",
        )

    def test_batch_whose_messages_were_lost_still_completes(
        self, emulator: Any, workers: Workers, producer: Any, tmp_path: Path
    ) -> None:
        """A batch whose messages the broker lost (here: never sent) is resumed by a worker
        once it has stalled for a visibility timeout (12 s here) with the queue empty."""
        ids = list(emulator.seed(count=40))
        workers.start(concurrency=4, VSBATCH_HEARTBEAT_SECONDS="0.5")

        def lose(_batch_id: str, _rows: list[int], _options: Any) -> None:
            """The broker dropped the message."""

        batch = submit_csv(producer, _csv(tmp_path, ids), lose)
        done = wait_done(producer, batch.id, timeout=60)

        _assert_exactly_once(producer, done, emulator, ids)

    def test_faults_end_in_true_outcomes(
        self, emulator: Any, workers: Workers, producer: Any, tmp_path: Path
    ) -> None:
        """503s, hangs, lock timeouts and applied-then-500s: every row succeeds exactly once."""
        emulator.configure(
            seed=7,
            fail_503_rate=0.10,
            hang_rate=0.05,
            hang_seconds=1.5,
            hang_applies=True,
            lock_timeout_rate=0.05,
            fail_500_after_rate=0.02,
            rate_limit=0,
        )
        ids = list(emulator.seed(count=200))
        workers.start(concurrency=16)

        done = wait_done(producer, submit_csv(producer, _csv(tmp_path, ids), enqueue_chunk).id)

        _assert_exactly_once(producer, done, emulator, ids)
        stats = emulator.stats()
        assert stats["faults"], "the emulator injected no faults"
        confirmed = [
            r for r in producer.ledger.iter_rows(done.id) if r.reason == "confirmed_by_read_back"
        ]
        assert stats["faults"].get("fail_500_after", 0) == len(confirmed)


class TestRedisRestart:
    def test_batch_completes_across_a_redis_restart(
        self, emulator: Any, tmp_path: Path, redis_client: Any
    ) -> None:
        """Redis (append-only) restarted mid-batch: the batch completes and nothing is lost."""
        server = EmbeddedRedis(tmp_path / "redis").start()
        env = worker_env(server.url, emulator.url)
        pool = Workers(env, tmp_path)
        settings = settings_from(env)
        configure(settings)
        deps = bootstrap(settings)
        install_deps(deps)
        try:
            emulator.configure(latency_ms=30)
            ids = list(emulator.seed(count=300))
            pool.start(concurrency=8)
            batch = submit_csv(deps, _csv(tmp_path, ids), enqueue_chunk)
            restarted = False

            def restart_midway(info: BatchInfo) -> None:
                nonlocal restarted
                if not restarted and info.terminal >= 80:
                    restarted = True
                    server.stop()  # SIGTERM: the server writes its append-only file and exits
                    server.restart()

            done = wait_done(deps, batch.id, timeout=120, poll=restart_midway)

            assert restarted
            _assert_exactly_once(deps, done, emulator, ids)
        finally:
            pool.stop_all()
            deps.close()
            server.stop()


@pytest.fixture(autouse=True)
def _restore_producer_config(redis_url: str, emulator: Any) -> Any:
    """Tests here re-point the Celery app; put it back on the shared test Redis afterwards."""
    yield
    configure(settings_from(worker_env(redis_url, emulator.url)))

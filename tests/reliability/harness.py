"""What the fault matrix and the fault explorer share: the rig, its disruptions, the invariants.

A :class:`Rig` is one batch's world: a private append-only Redis (so that Redis itself can be
stopped or killed), the emulator over its socket, ``vsbatch worker`` subprocesses and the
producer's dependencies on that Redis. The invariant checks return violations as sentences, so
that the matrix can assert on them and the explorer can count and print them.
"""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Workers, settings_from, worker_env
from vsbatch.bootstrap import Deps, bootstrap
from vsbatch.model.row import TERMINAL, BatchInfo, BatchState, RowRecord
from vsbatch.store.embedded_redis import EmbeddedRedis
from vsbatch.worker.celery_app import configure, install_deps

Worker = subprocess.Popen[bytes]


@dataclass
class Rig:
    """One batch's world: a private Redis, the emulator, worker processes, the producer."""

    redis: EmbeddedRedis
    emulator: Any
    workers: Workers
    deps: Deps
    ids: list[str] = field(default_factory=list)
    first: Any = None  # the first worker process
    batch_id: str = ""
    started: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)


@contextmanager
def open_rig(
    workdir: Path,
    emulator: Any,
    env: dict[str, str] | None = None,
    redis: EmbeddedRedis | None = None,
) -> Iterator[Rig]:
    """Start a private Redis under ``workdir`` (or ``redis``, not started yet: the fleet test's
    Redis on its own host) and point the producer (this process) at it.

    Workers are started by the caller (``rig.workers.start``) and stopped on exit. The Celery
    app is left configured for this Redis: a caller that shares the process must configure it
    back.
    """
    server = (redis or EmbeddedRedis(workdir / "redis")).start()
    full_env = {**worker_env(server.url, emulator.url), **(env or {})}
    pool = Workers(full_env, workdir)
    settings = settings_from(full_env)
    configure(settings)
    deps = bootstrap(settings)
    install_deps(deps)
    try:
        yield Rig(server, emulator, pool, deps)
    finally:
        resume_all(pool)
        pool.stop_all()
        deps.close()
        server.stop()


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> Path:
    """A CSV file with this header and these rows (values need no quoting)."""
    lines = [",".join(columns)] + [",".join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- disruptions ---------------------------------------------------------------------------------


def kill_worker(rig: Rig, proc: Worker, concurrency: int) -> Worker:
    """SIGKILL a worker and start a fresh one in its place."""
    rig.workers.kill(proc)
    return rig.workers.start(concurrency=concurrency)


def terminate_worker(rig: Rig, proc: Worker, concurrency: int, *, wait: bool = True) -> Worker:
    """SIGTERM a worker (Celery's warm shutdown), wait for it if asked, start a fresh one."""
    proc.send_signal(signal.SIGTERM)
    if wait:
        proc.wait(timeout=20)
    return rig.workers.start(concurrency=concurrency)


def resume_all(workers: Workers) -> None:
    """SIGCONT every live worker (a stopped one would ignore SIGTERM at teardown)."""
    for proc in workers.procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)


def restart_redis(rig: Rig) -> None:
    """Stop Redis cleanly (it writes its append-only file) and start it again."""
    rig.redis.stop()
    rig.redis.restart()


def kill_redis(rig: Rig) -> None:
    """SIGKILL Redis (appendfsync everysec) and start it again on the same data."""
    rig.redis.kill()
    rig.redis.restart()


# -- invariants ----------------------------------------------------------------------------------


def batch_violations(batch: BatchInfo, rows: Sequence[RowRecord], ids: Sequence[str]) -> list[str]:
    """One record per input row (``ids`` in file order), each terminal; counters add up.

    Returns one sentence per broken invariant (empty when the batch is sound).
    """
    found: list[str] = []
    expected = [(n + 2, sid) for n, sid in enumerate(ids)]
    if expected != [(r.row, r.session_id) for r in rows]:
        found.append(f"batch {batch.id}: the row records are not one per input row")
    open_rows = [(r.row, str(r.outcome)) for r in rows if r.outcome not in TERMINAL]
    if open_rows:
        found.append(f"batch {batch.id}: rows not terminal: {open_rows[:5]}")
    if batch.state is not BatchState.DONE:
        found.append(f"batch {batch.id}: state {batch.state}, not done")
    records = Counter(str(r.outcome) for r in rows)
    counters = +Counter({str(k): v for k, v in batch.counts.items()})
    if records != counters:
        found.append(f"batch {batch.id}: counters {dict(counters)} != records {dict(records)}")
    if not len(ids) == batch.total == batch.terminal:
        found.append(
            f"batch {batch.id}: rows {len(ids)}, total {batch.total}, terminal {batch.terminal}"
        )
    return found

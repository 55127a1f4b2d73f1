"""One small batch through real worker processes on a given Redis/broker topology, and the
exactly-once checks of the fault matrix on its result.

The Sentinel, TLS, Cluster-layout and RabbitMQ tests differ only in the environment they give
the workers and the producer (``VSBATCH_REDIS_URL``, ``VSBATCH_BROKER_URL``...) and in what
they do to it mid-batch; this runs the rest the same way for each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Workers, settings_from, wait_done, worker_env
from tests.reliability.harness import batch_violations, write_csv
from vsbatch.bootstrap import Deps, bootstrap
from vsbatch.intake.stage import submit_csv
from vsbatch.model.row import BatchInfo, Outcome
from vsbatch.worker.celery_app import configure, install_deps
from vsbatch.worker.tasks import enqueue_chunk


@dataclass
class Topology:
    """The producer's dependencies and the worker pool on one environment."""

    env: dict[str, str]
    deps: Deps
    workers: Workers
    emulator: Any
    notes: dict[str, Any] = field(default_factory=dict)


@contextmanager
def on_topology(
    env: dict[str, str], emulator: Any, log_dir: Path, back_to: str
) -> Iterator[Topology]:
    """Producer dependencies (this process) and a worker pool on ``env``; afterwards the
    workers stop and the Celery app goes back to the session's Redis ``back_to``."""
    settings = settings_from(env)
    configure(settings)
    deps = bootstrap(settings)
    install_deps(deps)
    pool = Workers(env, log_dir)
    try:
        yield Topology(env, deps, pool, emulator)
    finally:
        pool.stop_all()
        deps.close()
        configure(settings_from(worker_env(back_to, emulator.url)))


def run_batch(
    topo: Topology,
    rows: int,
    *,
    workers: int = 1,
    concurrency: int = 4,
    poll: Callable[[BatchInfo], None] | None = None,
    timeout: float = 90.0,
) -> tuple[BatchInfo, list[str]]:
    """Seed ``rows`` sessions, submit one update each, work them with ``workers`` processes;
    ``poll`` sees the batch while it runs. Returns the finished batch and the session ids."""
    topo.emulator.configure(seed=11, rate_limit=0, latency_ms=50)
    ids = list(topo.emulator.seed(count=rows))
    for _ in range(workers):
        topo.workers.start(concurrency=concurrency)
    csv = write_csv(
        topo.workers.log_dir / "in.csv", ["id", "metadata.batch"], [[i, "t"] for i in ids]
    )
    batch = submit_csv(topo.deps, csv, enqueue_chunk)
    return wait_done(topo.deps, batch.id, timeout=timeout, poll=poll), ids


def exactly_once_violations(topo: Topology, batch: BatchInfo, ids: list[str]) -> list[str]:
    """The fault matrix's invariants as sentences: one terminal outcome per row, counters that
    add up, every row succeeded, and each session updated once (as the emulator counts)."""
    rows = list(topo.deps.ledger.iter_rows(batch.id))
    found = batch_violations(batch, rows, ids)
    applied: dict[str, int] = topo.emulator.stats()["applied"]
    twice = {sid: n for sid, n in applied.items() if n != 1}
    if twice:
        found.append(f"sessions not applied exactly once: {twice}")
    not_succeeded = [(r.row, str(r.outcome)) for r in rows if r.outcome is not Outcome.SUCCEEDED]
    if not_succeeded:
        found.append(f"rows that did not succeed: {not_succeeded[:5]}")
    if set(applied) != set(ids):
        found.append(f"{len(set(ids) - set(applied))} sessions never updated")
    return found

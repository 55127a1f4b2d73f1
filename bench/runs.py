"""Running one batch and reading what happened: :func:`run_vsbatch` (through vsbatch's own
submit and ledger) and :func:`run_naive` (through the naive Celery app), each returning a
:class:`RunResult` with timings, outcomes and what the emulator saw, plus the measures they
share (:func:`steady_rate`, :func:`application_counts`).

The processes, environments and CSV files these runs use are in :mod:`bench.harness`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from bench.harness import Emulator, Stack, naive_env, settings_from, start_naive_workers
from vsbatch.bootstrap import Deps, bootstrap
from vsbatch.intake.stage import submit_csv
from vsbatch.model.row import Outcome
from vsbatch.worker.celery_app import configure, install_deps
from vsbatch.worker.tasks import enqueue_chunk


def steady_rate(times: Sequence[float]) -> float:
    """Rows per second between the 10th and the 90th percentile of finish times."""
    ordered = sorted(times)
    n = len(ordered)
    if n < 10:
        return 0.0
    lo, hi = n // 10, (n * 9) // 10
    span = ordered[hi] - ordered[lo]
    return (hi - lo) / span if span > 0 else 0.0


def application_counts(stats: dict[str, Any], sessions: Iterable[str]) -> dict[str, int]:
    """How often the emulator applied each session's update: duplicates and never-applied."""
    applied: dict[str, int] = stats.get("applied", {})
    duplicated = never = extra = 0
    for session_id in sessions:
        n = applied.get(session_id, 0)
        duplicated += n > 1
        extra += max(0, n - 1)
        never += n == 0
    return {"duplicated_sessions": duplicated, "extra_applications": extra, "never_applied": never}


@dataclass
class RunResult:
    """One batch run: timings, outcomes and what the emulator saw."""

    system: str
    rows: int
    wall: float
    steady: float
    outcomes: dict[str, int]
    rate_limited: int
    lock_timeouts: int
    faults: dict[str, int]
    applications: dict[str, int]
    wrong_outcomes: int = 0  # vsbatch: succeeded but never applied, or failed but applied
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.rows / self.wall if self.wall > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "rows": self.rows,
            "wall_s": round(self.wall, 3),
            "rows_per_s": round(self.rate, 2),
            "steady_rows_per_s": round(self.steady, 2),
            "outcomes": self.outcomes,
            "rate_limited_429": self.rate_limited,
            "lock_timeouts": self.lock_timeouts,
            "faults": self.faults,
            "applications": self.applications,
            "wrong_outcomes": self.wrong_outcomes,
            **self.extra,
        }


class Producer:
    """The bench process's own vsbatch dependencies on a scenario's Redis (submits, reads)."""

    def __init__(self, stack: Stack, env: dict[str, str]) -> None:
        self.settings = settings_from(env)
        configure(self.settings)
        self.deps: Deps = bootstrap(self.settings)
        install_deps(self.deps)
        stack.callback(self.deps.close)


def run_vsbatch(
    producer: Producer,
    emulator: Emulator,
    csv_path: Path,
    sessions: Sequence[str],
    *,
    timeout: float,
    label: str = "vsbatch",
) -> RunResult:
    """Submit the CSV, wait until every row is terminal, and read the ledger and the emulator."""
    deps = producer.deps
    started = time.time()
    batch = submit_csv(deps, csv_path, enqueue_chunk)
    submitted = time.time()
    deadline = time.monotonic() + timeout
    info = deps.ledger.get_batch(batch.id)
    while info.terminal < info.total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{label}: batch not done after {timeout:.0f}s: {info.counts}")
        time.sleep(0.1)
        info = deps.ledger.get_batch(batch.id)
    seen = time.time()
    records = list(deps.ledger.iter_rows(batch.id))
    stats = emulator.stats()
    finished = [r.updated_at for r in records]
    applied: dict[str, int] = stats.get("applied", {})
    wrong = sum(
        1
        for r in records
        if (r.outcome is Outcome.SUCCEEDED and applied.get(r.session_id, 0) == 0)
        or (r.outcome is Outcome.FAILED and applied.get(r.session_id, 0) > 0)
    )
    outcomes = {o.value: n for o, n in info.counts.items() if n}
    by_account: dict[str, list[float]] = {}
    for r in records:
        by_account.setdefault(r.account or "platform", []).append(r.updated_at)
    return RunResult(
        system=label,
        rows=info.total,
        wall=max(finished) - started,
        steady=steady_rate(finished),
        outcomes=outcomes,
        rate_limited=int(stats["rate_limited"]),
        lock_timeouts=int(stats["lock_timeouts"]),
        faults=dict(stats.get("faults", {})),
        applications=application_counts(stats, sessions),
        wrong_outcomes=wrong,
        extra={
            "submit_s": round(submitted - started, 3),
            "poll_lag_s": round(seen - max(finished), 3),
            "attempts": sum(r.attempts for r in records),
            "batch_id": batch.id,
            "per_account_steady": {a: steady_rate(t) for a, t in sorted(by_account.items())},
            "requests": stats.get("requests", {}),
        },
    )


def naive_url(redis_url: str) -> str:
    """The naive app's broker: database 1 of the scenario's Redis, flushed after each run."""
    return f"{redis_url}/1"


def run_naive(
    stack: Stack,
    redis_url: str,
    emulator: Emulator,
    jobs: Sequence[tuple[str, str | None]],
    *,
    cap: float,
    workers: int,
    threads: int,
    rate_limit: str = "100/s",
    label: str = "naive celery",
) -> RunResult:
    """Start fresh naive workers, send one task per row, and wait until each task ended
    (success or final failure) or ``cap`` seconds passed; then stop the workers and flush."""
    from bench import naive_celery

    url = naive_url(redis_url)
    client = redis.Redis.from_url(url)
    client.flushdb()
    env = naive_env(url, emulator.url, rate_limit)
    fleet = start_naive_workers(stack, env, workers, threads)
    try:
        naive_celery.configure(url)
        started = time.time()
        for i, (session_id, account) in enumerate(jobs):
            params: dict[str, Any] = {"options": {"document": {"require_matching_selfie": True}}}
            params["metadata"] = {"bench": f"r{i}"}
            naive_celery.update_session.apply_async((session_id, params, account))
        deadline = time.monotonic() + cap
        while True:
            ok, failed = (int(v or 0) for v in client.mget(naive_celery.OK, naive_celery.FAILED))
            if ok + failed >= len(jobs) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        stopped = time.time()
        finished = [float(t) for t in client.lrange(naive_celery.TIMES, 0, -1)]
        retries = int(client.get(naive_celery.RETRIES) or 0)
        stats = emulator.stats()
    finally:
        fleet.stop()
        client.flushdb()
        client.close()
    unfinished = len(jobs) - ok - failed
    return RunResult(
        system=label,
        rows=len(jobs),
        wall=(stopped if unfinished else max(finished)) - started,
        steady=steady_rate(finished),
        outcomes={"succeeded": ok, "failed": failed, "unfinished": unfinished},
        rate_limited=int(stats["rate_limited"]),
        lock_timeouts=int(stats["lock_timeouts"]),
        faults=dict(stats.get("faults", {})),
        applications=application_counts(stats, [s for s, _ in jobs]),
        extra={
            "celery_retries": retries,
            "requests": stats.get("requests", {}),
            "celery_rate_limit": rate_limit or None,
            "capped": bool(unfinished),
            "cap_s": cap,
        },
    )

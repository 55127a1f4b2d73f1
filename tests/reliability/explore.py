"""The fault explorer: for a seed, run one batch under a random schedule of faults, check it.

``run_seed`` starts a private Redis and two ``vsbatch worker`` processes against the emulator,
submits three waves of updates to the same sessions (so each session has three rows, applied
in order across batches), applies the seed's schedule (:mod:`tests.reliability.schedule`) while
the rows are in flight, waits for the batches to end (bounded), lets late requests settle, and
checks the invariants:

- one terminal outcome per row, and counters that add up (per batch);
- every row succeeded, failed retryable, or was skipped as superseded;
- no session applied more often than its rows succeeded (counted by the emulator);
- each session's final state is the last succeeded update on top of the earlier ones.

``python -m tests.reliability.explore --seeds N [--start S]`` runs seeds S..S+N-1 and prints a
line per seed and a summary; ``--seed S`` replays one. Exit status 1 on any violation.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

from tests.conftest import TEST_API_KEY
from tests.reliability.harness import (
    Rig,
    batch_violations,
    open_rig,
    write_csv,
)
from tests.reliability.schedule import Fault, draw_schedule
from tests.reliability.timeline import BASE_EMULATOR, Timeline
from vsbatch.intake.stage import submit_csv
from vsbatch.model.row import BatchInfo, Outcome, SkipReason
from vsbatch.worker.tasks import enqueue_chunk

__all__ = [
    "Fault",
    "SeedResult",
    "check_invariants",
    "draw_schedule",
    "main",
    "run_seed",
    "submit_waves",
]

SESSIONS = 20
WAVES = 3  # rows per session, one batch each: 60 rows
WORKERS = 2
CONCURRENCY = 4
# Short heartbeats, locks and visibility so that recovery happens within the run; a fleet rate
# of 10/s makes the 60 rows last >= 6 s, so the schedule's faults land while rows are in flight.
EXPLORER_ENV = {
    "VSBATCH_HEARTBEAT_SECONDS": "0.5",
    "VSBATCH_SESSION_LOCK_TTL": "3",
    "VSBATCH_VISIBILITY_TIMEOUT": "10",
    "VSBATCH_RATE_LIMIT": "10",
    "VSBATCH_CHUNK_SIZE": "5",
}
START_TIMEOUT = 90.0  # for the workers to finish a first row
RUN_TIMEOUT = 120.0  # for every row to be terminal, once the first one is
QUIET = 2.5  # no request and no application for this long (plus any late request's delay)
BASE = "/v1/identity/verification_sessions"


@dataclass
class SeedResult:
    """What one seed's run did and found."""

    seed: int
    schedule: list[Fault]
    injected: Counter[str] = field(default_factory=Counter)  # schedule faults that struck
    requests_faulted: dict[str, int] = field(default_factory=dict)  # the emulator's counts
    outcomes: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase of the run


def _poll(rig: Rig, batch_ids: Sequence[str]) -> list[BatchInfo] | None:
    """The batches as the ledger has them, or None while Redis cannot answer."""
    try:
        return [rig.deps.ledger.get_batch(bid) for bid in batch_ids]
    except redis.RedisError:
        return None


def _drive(rig: Rig, timeline: Timeline, batch_ids: Sequence[str]) -> tuple[str | None, float]:
    """Run the schedule until every row is terminal.

    Returns a sentence when that does not happen (else None), and when the first row finished.
    """
    started: float | None = None
    deadline = time.monotonic() + START_TIMEOUT
    infos: list[BatchInfo] | None = None
    try:
        while True:
            now = time.monotonic()
            infos = _poll(rig, batch_ids) if not timeline.redis_down else None
            if started is None and infos and any(i.terminal for i in infos):
                started, deadline = now, now + RUN_TIMEOUT
            if started is not None:
                timeline.fire_due(now - started)
            if infos and all(i.terminal >= i.total for i in infos):
                return None, started or now
            if now > deadline:
                counts = [dict(i.counts) for i in infos or []]
                stuck = f"not every row terminal after {RUN_TIMEOUT:.0f} s: {counts}"
                return stuck, started or now
            time.sleep(0.1)
    finally:
        timeline.finish()


def _settle(emulator: Any, quiet: float, bound: float = 30.0) -> None:
    """Wait until the emulator has seen no request and applied nothing for ``quiet`` seconds."""

    def activity() -> tuple[int, int]:
        stats = emulator.stats()
        return int(stats["updates"]), int(stats["applied_total"])

    last, since, deadline = activity(), time.monotonic(), time.monotonic() + bound
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        time.sleep(0.2)
        now = activity()
        if now != last:
            last, since = now, time.monotonic()


def _metadata(emulator: Any, ids: Sequence[str]) -> dict[str, dict[str, str]]:
    headers = {"Authorization": f"Bearer {TEST_API_KEY}"}
    with httpx.Client(base_url=emulator.url, headers=headers, timeout=10) as client:
        return {sid: client.get(f"{BASE}/{sid}").json()["metadata"] for sid in ids}


def check_invariants(
    rig: Rig, batch_ids: Sequence[str], ids: Sequence[str], result: SeedResult
) -> None:
    """The invariants over the ledger and the emulator, as violations on ``result``."""
    succeeded: dict[str, list[int]] = defaultdict(list)
    allowed = {(Outcome.SUCCEEDED, None), (Outcome.FAILED, True)}
    for wave, bid in enumerate(batch_ids):
        batch = rig.deps.ledger.get_batch(bid)
        rows = list(rig.deps.ledger.iter_rows(bid))
        result.violations += batch_violations(batch, rows, ids)
        for r in rows:
            result.outcomes[str(r.outcome)] += 1
            if r.outcome is Outcome.SUCCEEDED:
                succeeded[r.session_id].append(wave)
            superseded = r.outcome is Outcome.SKIPPED and r.reason == SkipReason.SUPERSEDED
            retryable = r.retryable if r.outcome is Outcome.FAILED else None
            if not superseded and (r.outcome, retryable) not in allowed:
                result.violations.append(
                    f"wave {wave} row {r.row} ({r.session_id}) ended {r.outcome} "
                    f"{r.reason or r.error_code or ''} retryable={r.retryable}"
                )
    applied: dict[str, int] = rig.emulator.stats()["applied"]
    for sid, count in sorted(applied.items()):
        if count > len(succeeded[sid]):
            result.violations.append(
                f"{sid} applied {count} times, but {len(succeeded[sid])} of its rows succeeded"
            )
    for sid, metadata in _metadata(rig.emulator, ids).items():
        waves = sorted(succeeded[sid])
        expected = {f"w{w}": "x" for w in waves} | ({"v": str(waves[-1])} if waves else {})
        if metadata != expected:
            result.violations.append(
                f"{sid} ends with metadata {metadata}, but its succeeded waves {waves} "
                f"give {expected}"
            )


def submit_waves(rig: Rig, ids: Sequence[str], workdir: Path) -> list[str]:
    """Submit wave ``w`` (``metadata.v=w``, ``metadata.w<w>=x`` for every session) for each wave."""
    batch_ids = []
    for wave in range(WAVES):
        path = write_csv(
            workdir / f"wave{wave}.csv",
            ["id", "metadata.v", f"metadata.w{wave}"],
            [[sid, str(wave), "x"] for sid in ids],
        )
        batch_ids.append(submit_csv(rig.deps, path, enqueue_chunk).id)
    return batch_ids


def run_seed(seed: int, emulator: Any, workdir: Path) -> SeedResult:
    """Run one seed's batch under its schedule, in ``workdir``; return what it found."""
    began = time.monotonic()
    result = SeedResult(seed, draw_schedule(seed))
    emulator.reset()
    emulator.configure(seed=seed, **BASE_EMULATOR)
    ids = emulator.seed(count=SESSIONS)
    with open_rig(workdir, emulator, EXPLORER_ENV) as rig:
        fleet = [rig.workers.start(concurrency=CONCURRENCY) for _ in range(WORKERS)]
        batch_ids = submit_waves(rig, ids, workdir)
        timeline = Timeline(rig, result.schedule, fleet, CONCURRENCY)
        stuck, started = _drive(rig, timeline, batch_ids)
        finished = time.monotonic()
        result.injected = timeline.injected
        # Quiet for longer than any request a gateway error or a hang may still deliver.
        _settle(emulator, QUIET + max((f.late_seconds for f in result.schedule), default=0.0))
        result.phases = {
            "start": started - began,  # Redis, workers up, the first row done
            "run": finished - started,
            "settle": time.monotonic() - finished,
        }
        for proc in rig.workers.procs:
            if proc.poll() is None:
                rig.workers.kill(proc)
        if stuck is not None:
            result.violations.append(stuck)
        stats = emulator.stats()
        result.requests_faulted = {**stats["faults"], "rate_limited": stats["rate_limited"]}
        check_invariants(rig, batch_ids, ids, result)
    result.seconds = time.monotonic() - began
    return result


def _line(result: SeedResult) -> str:
    faults = "; ".join(str(f) for f in result.schedule)
    verdict = "ok" if not result.violations else f"{len(result.violations)} VIOLATIONS"
    faulted = sum(result.requests_faulted.values())
    return (
        f"seed {result.seed}: {verdict} in {result.seconds:.1f} s, "
        f"{sum(result.injected.values())}/{len(result.schedule)} faults struck [{faults}], "
        f"{faulted} requests faulted, outcomes {dict(result.outcomes)}, "
        f"phases {' '.join(f'{k} {v:.1f}' for k, v in result.phases.items())}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: run seeds, print a line each and a summary; 1 on any violation."""
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.explore")
    parser.add_argument("--seeds", type=int, default=10, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="the first seed")
    parser.add_argument("--seed", type=int, help="replay this one seed")
    parser.add_argument("--keep", action="store_true", help="keep every run's logs")
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else range(args.start, args.start + args.seeds)
    from vsbatch.emulator.server import EmulatorServer

    # ``kill`` (SIGTERM) stops a long run like Ctrl-C: the seed's workers, Redis and the
    # emulator are stopped on the way out, never left running.
    signal.signal(signal.SIGTERM, _interrupted)

    results: list[SeedResult] = []
    began = time.monotonic()
    try:
        with EmulatorServer() as emulator:
            for seed in seeds:
                results.append(_run_and_print(seed, emulator, keep=args.keep))
    except KeyboardInterrupt:
        print("interrupted: the summary covers the seeds that finished")
    return _summary(results, time.monotonic() - began)


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _run_and_print(seed: int, emulator: Any, *, keep: bool) -> SeedResult:
    """Run one seed in a fresh directory (kept when it found violations) and print its line."""
    workdir = Path(tempfile.mkdtemp(prefix=f"vsbatch-explore-{seed}-"))
    result = run_seed(seed, emulator, workdir)
    print(_line(result), flush=True)
    for violation in result.violations:
        print(f"  violation: {violation}", flush=True)
    if result.violations:
        print(f"  replay: python -m tests.reliability.explore --seed {seed}", flush=True)
        print(f"  logs: {workdir}", flush=True)
    elif not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items()))


def _summary(results: Sequence[SeedResult], seconds: float) -> int:
    """Print the figure (seeds run, faults injected, violations); 1 if any seed failed."""
    struck = sum((r.injected for r in results), Counter[str]())
    faulted = sum((Counter(r.requests_faulted) for r in results), Counter[str]())
    violations = sum(len(r.violations) for r in results)
    per_seed = seconds / len(results) if results else 0.0
    print(
        f"seeds run: {len(results)}, faults injected: {struck.total()} ({_counts(struck)}), "
        f"requests faulted by the emulator: {faulted.total()} ({_counts(faulted)}), "
        f"violations: {violations}, in {seconds:.0f} s ({per_seed:.1f} s per seed)"
    )
    failing = [r.seed for r in results if r.violations]
    if failing:
        print(f"failing seeds: {failing}; replay one with --seed S")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

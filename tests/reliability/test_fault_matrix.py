"""The fault matrix: one batch per fault, through real worker processes, one set of invariants.

Each case runs 150 rows against its own append-only Redis (so that Redis itself can be
stopped or killed), the session's emulator over its socket and ``vsbatch worker``
subprocesses, injects one fault, waits until the batch is done, and asserts with
:func:`assert_invariants`: every row terminal exactly once, no session updated twice for one
row, and counts that add up.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import settings_from, wait_done, worker_env
from tests.reliability.harness import (
    Rig,
    batch_violations,
    kill_redis,
    kill_worker,
    open_rig,
    restart_redis,
    terminate_worker,
    write_csv,
)
from vsbatch.ledger import BatchInfo, Outcome
from vsbatch.submit import submit_csv
from vsbatch.tasks import enqueue_chunk
from vsbatch.worker import configure

ROWS = 150
CONCURRENCY = 4
# Enough latency that a fault lands while rows are in flight (about 80 rows/s at 4 threads).
LATENCY_MS = 50


def assert_invariants(rig: Rig, batch: BatchInfo, *, may_fail_retryable: bool = False) -> None:
    """The matrix's one assertion: exactly-once outcomes, no double application, counts add up.

    Every session is ``requires_input``, so every row must succeed; a case that may
    legitimately run a row out of retries allows ``failed`` rows, which must be retryable and
    whose session must not have been updated.
    """
    rows = list(rig.deps.ledger.iter_rows(batch.id))
    applied: dict[str, int] = rig.emulator.stats()["applied"]
    # One record per input row, each in a terminal outcome, the batch done, counts add up.
    assert [] == batch_violations(batch, rows, rig.ids)
    # No session updated twice; a session was updated if and only if its row succeeded.
    assert {} == {sid: n for sid, n in applied.items() if n != 1}
    succeeded = {r.session_id for r in rows if r.outcome is Outcome.SUCCEEDED}
    assert succeeded == set(applied)
    allowed = {(Outcome.FAILED, True)} if may_fail_retryable else set()
    unexpected = [
        (r.row, r.outcome, r.retryable, r.error_code)
        for r in rows
        if r.outcome is not Outcome.SUCCEEDED and (r.outcome, r.retryable) not in allowed
    ]
    assert [] == unexpected


# -- disruptions: run once from the poll loop, when their moment has come ---------------------


def replace_worker(rig: Rig) -> None:
    """SIGKILL the first worker and start a fresh one."""
    kill_worker(rig, rig.first, CONCURRENCY)


def replace_worker_warm(rig: Rig) -> None:
    """SIGTERM the first worker (Celery's warm shutdown), wait for it, start a fresh one."""
    terminate_worker(rig, rig.first, CONCURRENCY)


def _terminal(rig: Rig) -> int:
    return rig.deps.ledger.get_batch(rig.batch_id).terminal


def kill_redis_counting(rig: Rig) -> None:
    """SIGKILL Redis (appendfsync everysec) and start it again on the same data."""
    before = _terminal(rig)
    kill_redis(rig)
    rig.notes["terminal"] = (before, _terminal(rig))


def kill_redis_losing_last_second(rig: Rig) -> None:
    """SIGKILL Redis and cut its append-only file back to one second before: a power loss."""
    aof = next((rig.redis.data_dir / "appendonlydir").glob("*.incr.aof"))
    kept = aof.stat().st_size
    time.sleep(1.0)
    before = _terminal(rig)
    rig.redis.kill()
    rig.notes["lost_bytes"] = aof.stat().st_size - kept
    with aof.open("r+b") as file:
        file.truncate(kept)
    rig.redis.restart()
    rig.notes["terminal"] = (before, _terminal(rig))


def count_rate_limited(rig: Rig) -> None:
    """Note how many 429s the emulator has answered so far."""
    rig.notes["rate_limited"] = rig.emulator.stats()["rate_limited"]


def end_storm(rig: Rig) -> None:
    """The emulator recovers: no more 503s."""
    rig.emulator.configure(fail_503_rate=0.0)


@dataclass(frozen=True)
class Disruption:
    """``action`` runs once, when ``rows`` rows are terminal or ``seconds`` have passed."""

    action: Callable[[Rig], None]
    rows: int | None = None
    seconds: float | None = None

    def due(self, rig: Rig, batch: BatchInfo) -> bool:
        if self.rows is not None and batch.terminal >= self.rows:
            return True
        if self.seconds is None or not rig.started:
            return False
        return time.monotonic() - rig.started >= self.seconds


# -- case-specific evidence that the fault really happened ------------------------------------


def worker_was_killed(rig: Rig) -> None:
    assert -signal.SIGKILL == rig.first.returncode


def worker_shut_down_warm(rig: Rig) -> None:
    assert 0 == rig.first.returncode


def redis_was_restarted(rig: Rig) -> None:
    assert rig.notes["disrupted"]


def redis_lost_nothing(rig: Rig) -> None:
    # A killed process loses no acknowledged write: each reply follows the write() of the
    # append-only file, and the kernel keeps the written pages. Progress never goes back.
    before, after = rig.notes["terminal"]
    assert before <= after


def redis_lost_writes(rig: Rig) -> None:
    # About 200 kB of writes were lost and finished rows came back to life (about 105
    # terminal rows before, 35 after): redelivered messages bring them to an end again.
    before, after = rig.notes["terminal"]
    assert 0 < rig.notes["lost_bytes"]
    assert after < before


def faults_injected(*kinds: str) -> Callable[[Rig], None]:
    def check(rig: Rig) -> None:
        faults = rig.emulator.stats()["faults"]
        assert [] == [kind for kind in kinds if not faults.get(kind)]

    return check


def rate_limited(rig: Rig) -> None:
    assert 0 < rig.emulator.stats()["rate_limited"]


def limiter_backed_off(rig: Rig) -> None:
    # The 429s should be a start-up transient (about 45 with a halving limiter: the excess
    # over 20/s during the first penalties' 1 s cooldowns), bounded by the settings and not
    # by the rows: the second half of the batch, once the limiter has backed off, sees few.
    total = rig.emulator.stats()["rate_limited"]
    second_half = total - rig.notes["rate_limited"]
    assert (True, True) == (total < ROWS // 2, second_half <= ROWS // 30), (total, second_half)


@dataclass(frozen=True)
class Case:
    """One fault: emulator settings, worker settings, a disruption and the evidence."""

    emulator: dict[str, Any] = field(default_factory=dict)
    worker_env: dict[str, str] = field(default_factory=dict)
    disruption: Disruption | None = None
    evidence: Callable[[Rig], None] | None = None
    may_fail_retryable: bool = False


CASES: dict[str, Case] = {
    "worker_sigkill": Case(
        disruption=Disruption(replace_worker, rows=ROWS // 3), evidence=worker_was_killed
    ),
    "worker_sigterm": Case(
        disruption=Disruption(replace_worker_warm, rows=ROWS // 3), evidence=worker_shut_down_warm
    ),
    "redis_restart": Case(
        disruption=Disruption(restart_redis, rows=ROWS // 3), evidence=redis_was_restarted
    ),
    "redis_sigkill": Case(
        disruption=Disruption(kill_redis_counting, rows=ROWS // 3), evidence=redis_lost_nothing
    ),
    "redis_power_loss": Case(
        disruption=Disruption(kill_redis_losing_last_second, rows=ROWS // 5),
        evidence=redis_lost_writes,
    ),
    # 60 % of updates refused with 503 for two seconds, then recovery. A row may run out of
    # its 8 attempts inside the storm: it ends failed, retryable, and not applied.
    "5xx_storm": Case(
        emulator={"fail_503_rate": 0.6},
        disruption=Disruption(end_storm, seconds=2.0),
        evidence=faults_injected("fail_503"),
        may_fail_retryable=True,
    ),
    # Hung requests outlive the workers' 1 s read timeout; half of them apply the update.
    "hangs": Case(
        emulator={"hang_rate": 0.1, "hang_seconds": 1.5, "hang_applies": 0.5},
        evidence=faults_injected("hang"),
    ),
    "drops_applied": Case(
        emulator={"drop_rate": 0.15, "drop_applies": True}, evidence=faults_injected("drop")
    ),
    "drops_not_applied": Case(
        emulator={"drop_rate": 0.15, "drop_applies": False}, evidence=faults_injected("drop")
    ),
    "lock_timeouts": Case(
        emulator={"lock_timeout_rate": 0.3}, evidence=faults_injected("lock_timeout")
    ),
    # Stripe allows 20/s while the fleet is configured for 100/s: the limiter must back off.
    "429_storm": Case(
        emulator={"rate_limit": 20, "latency_ms": 0},
        worker_env={"VSBATCH_RATE_LIMIT": "100"},
        disruption=Disruption(count_rate_limited, rows=ROWS // 2),
        evidence=rate_limited,
    ),
}


@pytest.fixture
def rig(
    tmp_path: Path, emulator: Any, redis_url: str, request: pytest.FixtureRequest
) -> Iterator[Rig]:
    """A private append-only Redis, worker settings for the case, and the producer on them."""
    case: Case = CASES[request.param]
    try:
        with open_rig(tmp_path, emulator, case.worker_env) as rig:
            yield rig
    finally:
        # Put the Celery app back on the session's test Redis for the tests that follow.
        configure(settings_from(worker_env(redis_url, emulator.url)))


def _csv(tmp_path: Path, ids: list[str]) -> Path:
    return write_csv(tmp_path / "in.csv", ["id", "metadata.batch"], [[i, "matrix"] for i in ids])


def run_case(rig: Rig, case: Case) -> BatchInfo:
    """Run the case's batch to the end, disrupting it once at the case's moment."""
    rig.emulator.configure(
        **{"seed": 11, "rate_limit": 0, "latency_ms": LATENCY_MS, **case.emulator}
    )
    rig.ids = list(rig.emulator.seed(count=ROWS))
    rig.first = rig.workers.start(concurrency=CONCURRENCY)
    batch = submit_csv(rig.deps, _csv(rig.workers.log_dir, rig.ids), enqueue_chunk)
    rig.batch_id = batch.id

    def disrupt(info: BatchInfo) -> None:
        if not rig.started and info.terminal:
            rig.started = time.monotonic()  # the worker is up and rows are moving
        if case.disruption and not rig.notes.get("disrupted") and case.disruption.due(rig, info):
            rig.notes["disrupted"] = True
            case.disruption.action(rig)

    return wait_done(rig.deps, batch.id, timeout=60, poll=disrupt)


class TestFaultMatrix:
    @pytest.mark.parametrize("rig", sorted(CASES), indirect=True)
    def test_every_row_ends_exactly_once(self, rig: Rig, request: pytest.FixtureRequest) -> None:
        """Under each fault, every row ends terminal once and no session is updated twice."""
        # Given sessions requiring input and the case's fault
        case = CASES[request.node.callspec.params["rig"]]

        # When a batch of one update per session runs through the workers
        done = run_case(rig, case)

        # Then the fault happened and the invariants hold
        if case.evidence is not None:
            case.evidence(rig)
        assert_invariants(rig, done, may_fail_retryable=case.may_fail_retryable)

    @pytest.mark.parametrize("rig", ["429_storm"], indirect=True)
    def test_limiter_backs_off_below_a_misconfigured_rate(self, rig: Rig) -> None:
        """Configured at 5x Stripe's real limit, the fleet's 429s stay a start-up transient."""
        run_case(rig, CASES["429_storm"])

        limiter_backed_off(rig)

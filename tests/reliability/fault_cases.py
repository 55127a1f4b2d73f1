"""The fault matrix's cases: each fault's emulator and worker settings, the disruption run once
from the poll loop when its moment has come (a worker killed, stopped or paused, Redis
restarted or killed, a storm ended), and the evidence that the fault really happened.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from tests.reliability.harness import Rig, kill_redis, kill_worker, restart_redis, terminate_worker
from vsbatch.model.row import BatchInfo, Outcome

ROWS = 150
CONCURRENCY = 4
# Enough latency that a fault lands while rows are in flight (about 80 rows/s at 4 threads).
LATENCY_MS = 50


def _final_metadata(rig: Rig, value: str = "matrix") -> dict[str, bool]:
    """Session id -> whether the session carries ``metadata.batch=value``, as Stripe lists it."""
    client = rig.deps.stripe()
    sessions = rig.deps.policy.retrying()(lambda: list(client.list()))
    return {s.id: s.metadata.get("batch") == value for s in sessions}


# -- disruptions: run once from the poll loop, when their moment has come ---------------------


def replace_worker(rig: Rig) -> None:
    """SIGKILL the first worker and start a fresh one."""
    kill_worker(rig, rig.first, CONCURRENCY)


def replace_worker_warm(rig: Rig) -> None:
    """SIGTERM the first worker (Celery's warm shutdown), wait for it, start a fresh one."""
    terminate_worker(rig, rig.first, CONCURRENCY)


def pause_worker(rig: Rig) -> None:
    """SIGSTOP the first worker mid-batch; a fresh worker finds it dead (three heartbeats
    missed), takes its chunks and locks over and finishes the rows it had in flight; then
    SIGCONT it, so that its threads go on with those rows from where they stopped.
    """
    keys, client, ledger = rig.deps.ledger.keys, rig.deps.redis, rig.deps.ledger
    node = stop_first(rig)
    in_flight = rig.notes["in_flight"]
    rig.workers.start(concurrency=CONCURRENCY)

    def finished_by_the_fleet() -> bool:
        return all(ledger.get_row(rig.batch_id, row).is_terminal for row in in_flight)

    _await(lambda: not client.sismember(keys.nodes, node), "the fleet to take over")
    _await(finished_by_the_fleet, "the fleet to finish the paused worker's rows")
    rig.first.send_signal(signal.SIGCONT)
    _await(lambda: bool(client.exists(keys.alive(node))), "the paused worker to beat again")
    rig.notes["resumed"] = True


def stop_first(rig: Rig) -> str:
    """SIGSTOP the first worker, note the rows it has in flight; return its node id."""
    client, ledger = rig.deps.redis, rig.deps.ledger
    nodes = [n.decode() for n in cast(set[bytes], client.smembers(ledger.keys.nodes))]
    assert 1 == len(nodes), nodes  # the first worker is the only one beating
    rig.first.send_signal(signal.SIGSTOP)
    os.waitpid(rig.first.pid, os.WUNTRACED)  # returns once every thread of it has stopped
    rig.notes["in_flight"] = [r.row for r in ledger.iter_rows(rig.batch_id, [Outcome.RUNNING])]
    return nodes[0]


def _await(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout}s for {what}")
        time.sleep(0.1)


def _terminal(rig: Rig) -> int:
    return rig.deps.ledger.get_batch(rig.batch_id).terminal


def _aof_written(rig: Rig) -> None:
    """Return once every write Redis acknowledged so far is in its append-only file.

    With ``appendfsync everysec`` Redis holds its writes back (for up to 2 s) while a
    background fsync is still running on a slow disk, and replies meanwhile: a SIGKILL then
    loses acknowledged writes (the fault matrix saw 52 finished rows become 51 on a busy
    disk). Once no fsync is pending, the next round trip's reply follows the write()."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not int(rig.deps.redis.info("persistence").get("aof_pending_bio_fsync", 0)):
            rig.deps.redis.ping()
            if not int(rig.deps.redis.info("persistence").get("aof_pending_bio_fsync", 0)):
                return
        time.sleep(0.01)


def kill_redis_counting(rig: Rig) -> None:
    """SIGKILL Redis (appendfsync everysec) and start it again on the same data."""
    before = _terminal(rig)
    _aof_written(rig)
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


def worker_was_paused_and_resumed(rig: Rig) -> None:
    # Stopped with rows in flight, which the fleet finished; then running again, not killed,
    # and its threads found their locks taken over (the fence) when they went on.
    assert (True, None) == (rig.notes["resumed"], rig.first.poll())
    assert rig.notes["in_flight"]
    log = rig.workers.log_dir / "worker0.log"
    _await(lambda: "session lock lost" in log.read_text(encoding="utf-8"), "the fence", 30.0)


def redis_was_restarted(rig: Rig) -> None:
    assert rig.notes["disrupted"]


def redis_lost_nothing(rig: Rig) -> None:
    # A killed process loses no acknowledged write that reached the append-only file (each
    # reply follows the write(), unless a slow fsync holds writes back: ``_aof_written``
    # waits that out), and the kernel keeps the written pages. Progress never goes back.
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


def gateway_settled(rig: Rig) -> None:
    # Stripe may still be applying updates behind the gateway's answers: wait until none is
    # left, so that the invariants see every application there will ever be.
    deadline = time.monotonic() + 10
    while rig.emulator.stats()["gateway_pending"] and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = rig.emulator.stats()
    assert (0, True) == (stats["gateway_pending"], 0 < stats["faults"].get("gateway", 0))


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
    late_applies: bool = False


CASES: dict[str, Case] = {
    "worker_sigkill": Case(
        disruption=Disruption(replace_worker, rows=ROWS // 3), evidence=worker_was_killed
    ),
    "worker_sigterm": Case(
        disruption=Disruption(replace_worker_warm, rows=ROWS // 3), evidence=worker_shut_down_warm
    ),
    # SIGSTOP past three heartbeats (1 s each here), the fleet takes over, then SIGCONT.
    "worker_sigstop": Case(
        worker_env={"VSBATCH_HEARTBEAT_SECONDS": "1.0"},
        disruption=Disruption(pause_worker, rows=ROWS // 3),
        evidence=worker_was_paused_and_resumed,
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
    # A proxy answers 504 (HTML, no Stripe headers) to 30 % of updates while Stripe applies
    # most of them 0.2 s later: retries keep the key, so no session is updated twice.
    "gateway_5xx": Case(
        emulator={
            "gateway_rate": 0.3,
            "gateway_answer": "504",
            "gateway_applies": 0.7,
            "gateway_delay_seconds": 0.2,
        },
        evidence=gateway_settled,
    ),
    # 70 % of updates get a 504 while Stripe applies them 3 s later, after a row's retries
    # (and its read-back) may all be over: such a row goes back in line under its own key
    # (never a new one, which would apply it a second time) until a send under the key is
    # replayed or the read-back shows the change, so every row succeeds, applied once.
    "gateway_late_apply": Case(
        emulator={"gateway_rate": 0.7, "gateway_answer": "504", "gateway_delay_seconds": 3.0},
        evidence=gateway_settled,
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

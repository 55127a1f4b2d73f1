"""The fleet scenarios: Redis, the emulator and three workers on their own hosts, one fault each.

Hosts (network namespaces, :mod:`tests.fleet.netns`): ``redis`` (the append-only Valkey of the
fault matrix, listening on its host's address), ``stripe`` (the emulator's socket, served by a
thread of this process), ``w1``..``w3`` (one ``vsbatch worker`` each). The driver (this
process, in the root namespace) submits one batch, starts the scenario's fault once a quarter of
the rows are terminal, waits for every row to be terminal *and* for the fault to be over (a
partitioned or stopped worker comes back and goes on), then checks the fault matrix's
invariants (:func:`tests.reliability.test_fault_matrix.assert_invariants`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from tests.fleet.netns import Network
from tests.reliability.harness import Rig, batch_violations, open_rig, write_csv
from tests.reliability.test_fault_matrix import assert_invariants
from vsbatch.emulator.server import EmulatorServer
from vsbatch.intake.stage import submit_csv
from vsbatch.model.row import BatchInfo
from vsbatch.store.embedded_redis import EmbeddedRedis
from vsbatch.worker.tasks import enqueue_chunk

HOSTS = ("redis", "stripe", "w1", "w2", "w3")
WORKERS = ("w1", "w2", "w3")
CONCURRENCY = 4
LATENCY_MS = 50  # the emulator's own latency on updates, every scenario
SKEW_DIR = Path(__file__).parent / "skew"  # its sitecustomize shifts the wall clock


@dataclass(frozen=True)
class Sizes:
    """How big and how long: the issue's durations (full) or a short rehearsal (quick)."""

    rows: int
    rate: int  # the fleet's requests per second: the batch lasts about rows / rate seconds
    partition: float
    pause: float
    redis_down: float
    timeout: float

    @classmethod
    def full(cls) -> Sizes:
        return cls(rows=400, rate=10, partition=30, pause=60, redis_down=5, timeout=300)

    @classmethod
    def quick(cls) -> Sizes:
        return cls(rows=120, rate=15, partition=8, pause=15, redis_down=2, timeout=120)


class HostRedis(EmbeddedRedis):
    """The embedded Redis, started on the ``redis`` host and listening on its address."""

    def __init__(self, data_dir: Path, net: Network) -> None:
        super().__init__(data_dir, port=6379)
        self.net = net
        self.address = net.addresses["redis"]

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{self.address}:{self.port}"

    @property
    def safe_url(self) -> str:
        return f"redis://:***@{self.address}:{self.port}"

    def _write_config(self) -> Path:
        path = super()._write_config()
        text = path.read_text(encoding="ascii")
        path.write_text(text.replace("bind 127.0.0.1", f"bind {self.address}"), encoding="ascii")
        return path

    def start(self, timeout: float = 60.0) -> HostRedis:
        with self.net.inside("redis"):
            super().start(timeout)
        return self


@dataclass
class Fleet:
    """The hosts and the emulator, shared by the scenarios of one run."""

    net: Network
    emulator: EmulatorServer
    workdir: Path
    sizes: Sizes


@contextmanager
def open_fleet(workdir: Path, sizes: Sizes) -> Iterator[Fleet]:
    """Create the hosts and serve the emulator on the ``stripe`` host."""
    with Network(HOSTS) as net:
        emulator = EmulatorServer(host=net.addresses["stripe"], port=0)
        with net.inside("stripe"):
            emulator.start()
        try:
            yield Fleet(net, emulator, workdir, sizes)
        finally:
            emulator.stop()


@dataclass
class Result:
    """One line of the table, and what went wrong (empty when every invariant held)."""

    scenario: str
    rows: int = 0
    exactly_once: bool = False
    applied_twice: int = 0
    seconds: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    evidence: str = ""
    problems: list[str] = field(default_factory=list)


# -- faults: each runs in a thread from the moment a quarter of the rows are terminal ----------


Fault = Callable[[Fleet, Rig], str]  # returns the evidence that it happened


def partition_w1(fleet: Fleet, rig: Rig) -> str:
    """(a) w1 and Redis lose every frame between them, for ``sizes.partition`` seconds."""
    fleet.net.partition("w1", "redis")
    time.sleep(fleet.sizes.partition)
    fleet.net.partition("w1", "redis", heal=True)
    return f"w1 cut off from Redis for {fleet.sizes.partition:.0f} s"


def slow_lossy_stripe(fleet: Fleet, rig: Rig) -> str:
    """(b) set up before the batch (see :func:`prepare_latency`); nothing to do mid-batch."""
    return str(rig.notes["latency"])


def prepare_latency(fleet: Fleet, rig: Rig) -> None:
    """200 ms +- 50 ms and 5 % loss on the ``stripe`` host's link, or in the emulator when
    this kernel has no netem (then 5 % of updates have their connection cut mid-answer, half
    of them applied: harsher than packet loss, which TCP mostly repairs)."""
    if fleet.net.netem("stripe", "delay", "200ms", "50ms", "loss", "5%"):
        rig.notes["latency"] = "tc netem on stripe's link: delay 200ms 50ms loss 5%"
        return
    rig.emulator.configure(
        latency_ms=LATENCY_MS + 200, latency_jitter_ms=50, drop_rate=0.05, drop_applies=0.5
    )
    rig.notes["latency"] = "no netem in this kernel: emulator +200 +-50 ms, 5 % drops"


def restart_redis_host(fleet: Fleet, rig: Rig) -> str:
    """(c) Redis stops (writing its append-only file), its host leaves the network for
    ``sizes.redis_down`` seconds, comes back, and Redis starts on its data."""
    rig.redis.stop()
    fleet.net.link("redis", up=False)
    time.sleep(fleet.sizes.redis_down)
    fleet.net.link("redis", up=True)
    rig.redis.restart()
    return f"Redis host down {fleet.sizes.redis_down:.0f} s, Redis restarted on its AOF"


def pause_w1(fleet: Fleet, rig: Rig) -> str:
    """(d) SIGSTOP w1's worker for ``sizes.pause`` seconds, then SIGCONT."""
    rig.first.send_signal(signal.SIGSTOP)
    time.sleep(fleet.sizes.pause)
    rig.first.send_signal(signal.SIGCONT)
    return f"w1 stopped {fleet.sizes.pause:.0f} s, then resumed ({_alive(rig.first)})"


def clock_ahead(fleet: Fleet, rig: Rig) -> str:
    """(e) w3 was started with its wall clock 30 s ahead; show how far ahead it is."""
    probe = [sys.executable, "-c", "import time; print(time.time())"]
    out = subprocess.run(probe, env={**os.environ, **skewed_env()}, capture_output=True, text=True)
    return f"w3's wall clock {float(out.stdout) - time.time():+.0f} s"


def skewed_env() -> dict[str, str]:
    """The environment that puts a Python process's wall clock 30 s ahead (``skew/``)."""
    path = [str(SKEW_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"PYTHONPATH": os.pathsep.join(path), "VSBATCH_FLEET_CLOCK_OFFSET": "30"}


def _taken_over(rig: Rig) -> str:
    """Whether the fleet reaped w1's chunks, and how many of w1's rows met the fence."""
    logs = sorted(rig.workers.log_dir.glob("worker*.log"))
    text = [log.read_text(encoding="utf-8", errors="replace") for log in logs]
    reaped = sum(t.count(f":{rig.first.pid}:") for t in text[1:])
    fenced = text[0].count("session lock lost") if text else 0
    return f"w1 reaped by the fleet {reaped} time(s), {fenced} of its rows fenced"


def _alive(proc: subprocess.Popen[bytes]) -> str:
    return "running" if proc.poll() is None else f"exit {proc.returncode}"


@dataclass(frozen=True)
class Scenario:
    """A fault, what to do before the batch, per-host worker settings, allowed failures."""

    fault: Fault
    prepare: Callable[[Fleet, Rig], None] | None = None
    host_env: Callable[[], dict[str, dict[str, str]]] = dict
    after: Callable[[Rig], str] | None = None  # more evidence, once the batch has settled
    may_fail_retryable: bool = False


def no_fault(fleet: Fleet, rig: Rig) -> str:
    """0. the baseline: nothing goes wrong."""
    return "no fault"


SCENARIOS: dict[str, Scenario] = {
    "0. no fault": Scenario(no_fault),
    "a. w1 partitioned from Redis": Scenario(partition_w1, after=_taken_over),
    "b. 200±50 ms, 5 % loss to Stripe": Scenario(
        slow_lossy_stripe, prepare=prepare_latency, may_fail_retryable=True
    ),
    "c. Redis host restarted": Scenario(restart_redis_host),
    "d. w1 SIGSTOPped, resumed": Scenario(pause_w1, after=_taken_over),
    "e. w3's clock 30 s ahead": Scenario(clock_ahead, host_env=lambda: {"w3": skewed_env()}),
}


# -- running one scenario ---------------------------------------------------------------------


def run_scenario(fleet: Fleet, name: str, scenario: Scenario) -> Result:
    """One batch through the fleet under ``scenario``; the table line and any violation."""
    sizes, result = fleet.sizes, Result(name, rows=fleet.sizes.rows)
    workdir = fleet.workdir / name.split(".")[0]
    workdir.mkdir(parents=True)
    fleet.emulator.reset()
    fleet.emulator.configure(seed=11, rate_limit=0, latency_ms=LATENCY_MS)
    env = {"VSBATCH_HEARTBEAT_SECONDS": "1.0", "VSBATCH_RATE_LIMIT": str(sizes.rate)}
    redis_server = HostRedis(workdir / "redis", fleet.net)
    try:
        with open_rig(workdir, fleet.emulator, env, redis=redis_server) as rig:
            _run(fleet, rig, scenario, result)
    finally:
        fleet.net.clear_netem("stripe")
    return result


def _run(fleet: Fleet, rig: Rig, scenario: Scenario, result: Result) -> None:
    if scenario.prepare is not None:
        scenario.prepare(fleet, rig)
    host_env = scenario.host_env()
    for host in WORKERS:
        with fleet.net.inside(host):
            proc = rig.workers.start(concurrency=CONCURRENCY, **host_env.get(host, {}))
        rig.first = rig.first or proc
    rig.ids = list(rig.emulator.seed(count=fleet.sizes.rows))
    rows = [[sid, "matrix"] for sid in rig.ids]
    csv = write_csv(rig.workers.log_dir / "batch.csv", ["id", "metadata.batch"], rows)
    batch = submit_csv(rig.deps, csv, enqueue_chunk)
    rig.batch_id, submitted = batch.id, time.monotonic()
    done = _drive(fleet, rig, scenario, result, submitted)
    _settle(rig)
    if scenario.after is not None:
        result.evidence = f"{result.evidence}; {scenario.after(rig)}"
    _check(rig, scenario, result, done)


def _drive(
    fleet: Fleet, rig: Rig, scenario: Scenario, result: Result, submitted: float
) -> BatchInfo:
    """Poll until every row is terminal and the fault is over; start the fault on time."""
    fault: threading.Thread | None = None
    finished: float | None = None
    deadline = submitted + fleet.sizes.timeout
    while True:
        info = _poll(rig)
        if info is not None and fault is None and info.terminal >= fleet.sizes.rows // 4:
            fault = threading.Thread(
                target=_fault, args=(fleet, rig, scenario, result), daemon=True
            )
            fault.start()
        if info is not None and info.terminal >= info.total and finished is None:
            finished = time.monotonic()
            result.seconds = finished - submitted
        if finished is not None and fault is not None and not fault.is_alive() and info:
            return info
        if time.monotonic() > deadline:
            if fault is not None:
                fault.join()
            counts = dict(info.counts) if info else "Redis not answering"
            raise TimeoutError(f"not done after {fleet.sizes.timeout:.0f} s: {counts}")
        time.sleep(0.2)


def _fault(fleet: Fleet, rig: Rig, scenario: Scenario, result: Result) -> None:
    try:
        result.evidence = scenario.fault(fleet, rig)
    except Exception as exc:  # the table reports it; the run goes on to clean up
        result.problems.append(f"the fault itself failed: {exc!r}")


def _poll(rig: Rig) -> BatchInfo | None:
    try:
        return rig.deps.ledger.get_batch(rig.batch_id)
    except redis.RedisError:
        return None


def _settle(rig: Rig, quiet: float = 3.0) -> None:
    """Wait until the emulator has seen no request for ``quiet`` seconds (late sends land)."""
    last, seen = time.monotonic(), rig.emulator.stats()["requests"]
    while time.monotonic() - last < quiet:
        time.sleep(0.5)
        now = rig.emulator.stats()["requests"]
        if now != seen:
            last, seen = time.monotonic(), now


def _check(rig: Rig, scenario: Scenario, result: Result, done: BatchInfo) -> None:
    done = rig.deps.ledger.get_batch(rig.batch_id)
    rows = list(rig.deps.ledger.iter_rows(done.id))
    applied: dict[str, int] = rig.emulator.stats()["applied"]
    violations = batch_violations(done, rows, rig.ids)
    result.exactly_once = not violations
    result.applied_twice = sum(1 for n in applied.values() if n > 1)
    result.outcomes = Counter(str(r.outcome) for r in rows)
    result.problems.extend(violations)
    try:
        assert_invariants(rig, done, may_fail_retryable=scenario.may_fail_retryable)
    except AssertionError as exc:
        result.problems.append(f"invariants: {str(exc).splitlines()[0][:300]}")


def describe(result: Result) -> dict[str, Any]:
    """The table's cells for one result."""
    return {
        "scenario": result.scenario,
        "rows": result.rows,
        "exactly-one-outcome": "yes" if result.exactly_once else "NO",
        "applied twice": result.applied_twice,
        "time to finish": f"{result.seconds:.1f} s",
        "outcomes": ", ".join(f"{k} {v}" for k, v in sorted(result.outcomes.items())),
    }

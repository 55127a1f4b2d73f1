"""The engine's work per row (issue 12, target 2): one ``vsbatch worker`` process with its
default threads, the emulator at 50 ms latency and no rate limit to speak of.

Printed side by side: rows per second, the worker's CPU milliseconds per row (its own process,
from ``/proc``), Redis commands per row (``INFO commandstats``, every client: the worker, the
broker and the producer's staging) and Redis bytes per finished row (``used_memory`` after the
batch minus before it, so the queue's messages are gone and only what stays is counted). The
worker is started and consuming before the batch is submitted, and the counters are reset
then, so start-up is not counted.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis

from bench.harness import (
    Emulator,
    Producer,
    Stack,
    run_vsbatch,
    start_vsbatch_workers,
    vsbatch_env,
    write_csv,
)
from bench.report import Ratio, ScenarioResult, table

if TYPE_CHECKING:
    from bench.scenarios import Sizes

LATENCY_MS = 50.0
NO_LIMIT = 10_000.0  # requests/s: far above what one process reaches
TARGETS = {"rows/s": 500.0, "CPU ms/row": 2.0, "Redis cmds/row": 8.0, "Redis B/row": 250.0}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def command_calls(client: redis.Redis) -> dict[str, int]:
    """Calls per command since the server's counters were last reset."""
    stats: dict[str, Any] = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()}


def engine_figures(rows: int) -> dict[str, float]:
    """Run ``rows`` updates through one worker process and measure the work per row."""
    with Stack("engine") as stack:
        emulator = Emulator(stack, rate_limit=0, latency_ms=LATENCY_MS)
        server = stack.redis()
        env = vsbatch_env(server.url, emulator.url, NO_LIMIT, threads=0)
        del env["VSBATCH_CONCURRENCY"]  # the default: sized by the worker
        ids = emulator.seed(rows)
        path = stack.dir / "engine.csv"
        write_csv(path, ((sid, None) for sid in ids))
        producer = Producer(stack, env)
        fleet = start_vsbatch_workers(stack, env, 1)
        client = redis.Redis.from_url(server.url)
        stack.callback(client.close)
        pid = fleet.procs[0].pid
        client.config_resetstat()
        used_before = int(client.info("memory")["used_memory"])
        cpu_before = cpu_seconds(pid)
        run = run_vsbatch(producer, emulator, path, ids, timeout=30 + rows / 50)
        cpu = cpu_seconds(pid) - cpu_before
        calls = command_calls(client)
        time.sleep(0.5)  # the last acks leave the queue
        used_after = int(client.info("memory")["used_memory"])
        fleet.stop()
    return {
        "rows": float(rows),
        "rows/s": rows / run.wall,
        "CPU ms/row": 1000 * cpu / rows,
        "Redis cmds/row": sum(calls.values()) / rows,
        "Redis B/row": (used_after - used_before) / rows,
        "succeeded": float(run.outcomes.get("succeeded", 0)),
        **{f"cmd {name}": n / rows for name, n in calls.items()},
    }


def engine(sizes: Sizes) -> ScenarioResult:
    """Target 2: rows/s, CPU ms, Redis commands and bytes per row of one worker process."""
    rows = int(sizes.engine_rows)
    figures = engine_figures(rows)
    result = ScenarioResult("engine")
    names = list(TARGETS)
    result.tables.append(
        table(
            f"engine: {rows:,} rows, one `vsbatch worker` process (default threads), emulator "
            f"at {LATENCY_MS:.0f} ms latency, no rate limit",
            ["figure", "measured", "target"],
            [[name, figures[name], TARGETS[name]] for name in names],
        )
    )
    top = sorted((k for k in figures if k.startswith("cmd ")), key=lambda k: -figures[k])[:8]
    result.notes.append("commands per row: " + ", ".join(f"{k[4:]} {figures[k]:.1f}" for k in top))
    result.notes.append(
        f"succeeded {figures['succeeded']:.0f} of {rows}; commands: INFO commandstats of every "
        "client after CONFIG RESETSTAT; bytes: used_memory after the batch minus before"
    )
    result.ratios += [
        Ratio("engine", name, figures[name], f"target {TARGETS[name]:g}") for name in names
    ]
    result.data = figures
    return result

"""The engine's work per row (issue 12, target 2): one ``vsbatch worker`` process with its
default threads, the emulator at 50 ms latency and no rate limit to speak of.

Printed side by side: rows per second, the worker's CPU milliseconds per row (its own process,
from ``/proc``), Redis commands per row and Redis bytes per finished row. Commands are counted
two ways: the commands clients send (a Lua script counts once; MONITOR, in a second, smaller
run, since it slows the server) and every command the server runs, scripts' inner commands
included (``INFO commandstats``). Every client is counted: the worker, the broker and the
producer's staging. Bytes are the ``MEMORY USAGE`` of every key after the batch (the queue's
messages are gone by then) over the rows, and ``used_memory`` after minus before. The worker
is started and consuming before the batch is submitted, and the counters are reset then, so
start-up is not counted.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis

from bench.harness import Emulator, Stack, start_vsbatch_workers, vsbatch_env, write_csv
from bench.report import Ratio, ScenarioResult, table
from bench.runs import Producer, run_vsbatch
from vsbatch.store.keys import Keys

if TYPE_CHECKING:
    from bench.sizes import Sizes

LATENCY_MS = 50.0
NO_LIMIT = 10_000.0  # requests/s: far above what one process reaches
TAP_ROWS = 2_000
# Issue 12, target 2. "Redis commands per row" is read as the commands clients send (each a
# round trip's worth of work on both sides; a script call counts once); the commands Redis
# runs, scripts' own included, are shown beside it without a target.
TARGETS: dict[str, float | None] = {
    "rows/s": 500.0,
    "CPU ms/row": 2.0,
    "client cmds/row": 8.0,
    "server cmds/row": None,
    "Redis B/row (keys)": 250.0,
    "Redis B/row (used_memory)": 250.0,  # freed by deleting the batch's keys
}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def command_calls(client: redis.Redis) -> dict[str, int]:
    """Calls per command since the server's counters were last reset."""
    stats: dict[str, Any] = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()}


def key_bytes(client: redis.Redis) -> Counter[str]:
    """``MEMORY USAGE`` of every key, summed by kind of key (its name with the batch, session
    or node in it replaced by ``*``)."""
    sizes: Counter[str] = Counter()
    for key in client.scan_iter(count=1000):
        sizes[key_kind(key.decode())] += int(client.memory_usage(key, samples=0) or 0)
    return sizes


def batch_bytes_freed(client: redis.Redis, batch_id: str) -> int:
    """``used_memory`` freed by deleting the batch's keys: what its finished rows hold, without
    the server's one-off growth during the run (the Lua VM, the script cache, client buffers:
    about 1 MB whatever the rows)."""
    before = int(client.info("memory")["used_memory"])
    client.delete(*Keys().batch_keys(batch_id))
    time.sleep(0.2)  # deleted in a background thread (lazyfree)
    return before - int(client.info("memory")["used_memory"])


def key_kind(key: str) -> str:
    """``vsbatch:b:<bid>:rows`` -> ``b:*:rows``; ``vsbatch:applied:<acct>:<sid>`` ->
    ``applied:*``: the kind of key, for the bytes' breakdown."""
    parts = key.split(":")[1:]
    if not parts:
        return key
    if parts[0] == "b" and len(parts) > 1:
        return ":".join(["b", "*", *parts[2:]])
    return parts[0] + (":*" if len(parts) > 1 else "")


class CommandTap:
    """Counts the commands clients send, by name, with MONITOR in a thread. MONITOR also
    shows the commands scripts run, as coming from ``lua``: those are left out."""

    def __init__(self, url: str) -> None:
        self.sent: Counter[str] = Counter()
        self._client = redis.Redis.from_url(url)
        self._stop = threading.Event()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        with self._client.monitor() as monitor:
            ready.set()
            for entry in monitor.listen():
                if self._stop.is_set():
                    return
                if entry.get("client_type") != "lua":
                    self.sent[str(entry["command"]).split(" ", 1)[0].upper()] += 1

    def stop(self, ping: redis.Redis) -> Counter[str]:
        """Stop counting and return the counts (``ping`` wakes the listener up)."""
        self._stop.set()
        ping.ping()
        self._thread.join(timeout=10)
        self._client.close()
        return self.sent


def start_profile(pid: int, svg: Path) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` of the worker into ``svg`` (a flame graph of the threads holding the
    GIL: where its CPU goes, not where it waits), or None without py-spy."""
    spy = shutil.which("py-spy")
    if spy is None:
        return None
    svg.parent.mkdir(parents=True, exist_ok=True)
    args = [spy, "record", "--pid", str(pid), "--output", str(svg), "--rate", "200", "--gil"]
    return subprocess.Popen(
        [*args, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def stop_profile(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop recording (py-spy writes its flame graph on SIGINT)."""
    if proc is not None:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)


PROFILE_SVG = Path(__file__).resolve().parent / "out" / "engine-flame.svg"


def engine_figures(
    rows: int, *, tap: bool = False, profile: Path | None = None
) -> dict[str, float]:
    """Run ``rows`` updates through one worker process and measure the work per row; with
    ``tap``, only count the commands clients send (MONITOR slows the server); with
    ``profile``, record a flame graph of the worker there (a separate run: sampling costs CPU)."""
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
        used_before, keys_before = int(client.info("memory")["used_memory"]), key_bytes(client)
        watcher = CommandTap(server.url) if tap else None
        spy = start_profile(pid, profile) if profile is not None else None
        cpu_before = cpu_seconds(pid)
        run = run_vsbatch(producer, emulator, path, ids, timeout=30 + rows / 50)
        cpu = cpu_seconds(pid) - cpu_before
        stop_profile(spy)
        if watcher is not None:
            sent = watcher.stop(client)
            fleet.stop()
            return {f"sent {name}": n / rows for name, n in sent.items()} | {
                "client cmds/row": sum(sent.values()) / rows
            }
        calls = command_calls(client)
        time.sleep(0.5)  # the last acks leave the queue
        used_after, keys_after = int(client.info("memory")["used_memory"]), key_bytes(client)
        fleet.stop()
        freed = batch_bytes_freed(client, str(run.extra["batch_id"]))
    return {
        "rows": float(rows),
        "rows/s": rows / run.wall,
        "CPU ms/row": 1000 * cpu / rows,
        "server cmds/row": sum(calls.values()) / rows,
        "Redis B/row (keys)": (keys_after.total() - keys_before.total()) / rows,
        "Redis B/row (used_memory)": freed / rows,
        "used_memory growth/row": (used_after - used_before) / rows,
        "succeeded": float(run.outcomes.get("succeeded", 0)),
        **{f"cmd {name}": n / rows for name, n in calls.items()},
        **{f"bytes {kind}": n / rows for kind, n in (keys_after - keys_before).items()},
    }


def _target(value: float | None) -> str:
    return "-" if value is None else f"target {value:g}"


def _top(figures: dict[str, float], prefix: str) -> str:
    names = sorted((k for k in figures if k.startswith(prefix)), key=lambda k: -figures[k])
    return ", ".join(f"{k[len(prefix) :]} {figures[k]:.2f}" for k in names[:10])


def engine(sizes: Sizes) -> ScenarioResult:
    """Target 2: rows/s, CPU ms, Redis commands and bytes per row of one worker process."""
    rows = int(sizes.engine_rows)
    figures = engine_figures(rows) | engine_figures(TAP_ROWS, tap=True)
    engine_figures(TAP_ROWS, profile=PROFILE_SVG)
    result = ScenarioResult("engine")
    names = list(TARGETS)
    result.tables.append(
        table(
            f"engine: {rows:,} rows, one `vsbatch worker` process (default threads), emulator "
            f"at {LATENCY_MS:.0f} ms latency, no rate limit",
            ["figure", "measured", "target"],
            [[name, figures[name], TARGETS[name] or "-"] for name in names],
        )
    )
    result.notes.append(f"client commands per row ({TAP_ROWS} rows): {_top(figures, 'sent ')}")
    result.notes.append(f"server commands per row: {_top(figures, 'cmd ')}")
    result.notes.append(
        f"Redis bytes per row by kind of key (MEMORY USAGE): {_top(figures, 'bytes ')}; used_memory"
        " freed by deleting the batch's keys is the row's share of used_memory; used_memory grew"
        f" {figures['used_memory growth/row']:.0f} B/row over the run, a fixed part of it (the"
        " Lua VM, the script cache, client buffers: about 1 MB) growing once"
    )
    if PROFILE_SVG.exists():
        result.notes.append(f"flame graph of the worker (py-spy, {TAP_ROWS} rows): {PROFILE_SVG}")
    result.notes.append(
        f"succeeded {figures['succeeded']:.0f} of {rows}; client commands: MONITOR without the "
        "scripts' own; server commands: INFO commandstats after CONFIG RESETSTAT"
    )
    result.ratios += [
        Ratio("engine", name, figures[name], _target(TARGETS[name])) for name in names
    ]
    result.data = figures
    return result

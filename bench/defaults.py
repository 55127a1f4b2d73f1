"""The headline scenario: ``vsbatch run FILE`` exactly as a user types it, default settings.

No tuned fleet: one ``vsbatch run`` process (its embedded Redis, its in-process workers) in a
fresh directory, with only what a user must give it: the Stripe base (the emulator), a test
key and the rate under test. It runs at 300 ms and at 1 s of emulator latency, against the
emulator's limit of 100/s, with vsbatch's limiter at 95/s; the "before" row is the same
command with ``VSBATCH_CONCURRENCY=16`` (the fixed default before threads were sized from the
rate), measured in the same run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import API_KEY, Emulator, Stack, clean_env, write_csv
from bench.report import Ratio, ScenarioResult, table
from bench.runs import steady_rate
from vsbatch.bootstrap import bootstrap
from vsbatch.config import Settings
from vsbatch.store.local_redis import LocalRedis

STRIPE_LIMIT = 100.0  # the emulator's limit
RATE = 95.0  # VSBATCH_RATE_LIMIT under test
LATENCIES_MS = (300.0, 1000.0)
# label, extra environment: the old default (a fixed 16 threads), then the defaults.
VARIANTS: tuple[tuple[str, dict[str, str]], ...] = (
    ("before: VSBATCH_CONCURRENCY=16", {"VSBATCH_CONCURRENCY": "16"}),
    ("vsbatch run FILE (defaults)", {}),
)


def _command(csv_name: str) -> list[str]:
    """``vsbatch run FILE``: the installed script when there is one (as a user types it)."""
    script = Path(sys.executable).with_name("vsbatch")
    if script.exists():
        return [str(script), "run", csv_name]
    return [sys.executable, "-m", "vsbatch", "run", csv_name]


def _ledger_times(run_dir: Path) -> tuple[list[float], dict[str, int]]:
    """Finish times of every row and the outcome counts, read back from the run's ledger."""
    with LocalRedis(run_dir / ".vsbatch" / "redis") as local:
        settings = Settings(_env_file=None, redis_url=local.url)  # type: ignore[call-arg]
        deps = bootstrap(settings)
        try:
            (batch,) = deps.ledger.list_batches()
            times = [r.updated_at for r in deps.ledger.iter_rows(batch.id)]
            counts = {o.value: n for o, n in batch.counts.items() if n}
        finally:
            deps.close()
    return times, counts


def _run_once(
    stack: Stack, emulator: Emulator, rows: int, label: str, extra: dict[str, str], tag: str
) -> dict[str, Any]:
    """One ``vsbatch run`` in a fresh directory; its wall time, steady rate and outcomes."""
    emulator.reset()
    ids = emulator.seed(rows)
    run_dir = stack.dir / tag
    run_dir.mkdir()
    write_csv(run_dir / "updates.csv", ((sid, None) for sid in ids))
    env = clean_env(
        VSBATCH_STRIPE_API_BASE=emulator.url,
        VSBATCH_STRIPE_API_KEY=API_KEY,
        VSBATCH_RATE_LIMIT=f"{RATE:g}",
        **extra,
    )
    timeout = rows / 5 + 120  # far above the slowest variant (16 threads at 1 s: 16/s)
    with (stack.dir / f"{tag}.log").open("wb") as log:
        started = time.time()
        proc = subprocess.run(
            _command("updates.csv"),
            cwd=run_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
        ended = time.time()
    if proc.returncode != 0:
        raise RuntimeError(f"{label} exited {proc.returncode}:\n{stack.log_tail(tag)}")
    times, counts = _ledger_times(run_dir)
    stats = emulator.stats()
    shutil.rmtree(run_dir / ".vsbatch", ignore_errors=True)
    return {
        "label": label,
        "rows": rows,
        "process_s": ended - started,
        "work_s": max(times) - started,
        "steady": steady_rate(times),
        "outcomes": counts,
        "rate_limited": int(stats["rate_limited"]),
    }


def defaults(sizes: Any) -> ScenarioResult:
    """``vsbatch run FILE`` with default settings: achieved rate / configured rate."""
    rows = sizes.throughput_rows
    result = ScenarioResult("defaults")
    runs: list[tuple[float, dict[str, Any]]] = []
    with Stack("defaults") as stack:
        for latency in LATENCIES_MS:
            emulator = Emulator(stack, rate_limit=STRIPE_LIMIT, latency_ms=latency)
            for i, (label, extra) in enumerate(VARIANTS):
                tag = f"run{latency:.0f}ms-{i}"
                runs.append((latency, _run_once(stack, emulator, rows, label, extra, tag)))
    table_rows = [
        [
            run["label"],
            f"{latency:.0f} ms",
            run["rows"],
            run["process_s"],
            run["rows"] / run["process_s"],
            run["steady"],
            run["steady"] / RATE,
            run["rows"] / run["process_s"] / RATE,
            run["rate_limited"],
            run["outcomes"].get("succeeded", 0),
        ]
        for latency, run in runs
    ]
    result.tables.append(
        table(
            f"defaults: 'vsbatch run FILE' ({rows:,} rows), VSBATCH_RATE_LIMIT={RATE:g}, "
            f"emulator limit {STRIPE_LIMIT:.0f}/s; no other setting",
            [
                "command",
                "latency",
                "rows",
                "process s",
                "rows/s",
                "steady/s",
                "steady / cfg",
                "overall / cfg",
                "429 rate",
                "succeeded",
            ],
            table_rows,
        )
    )
    result.notes += [
        "process s = the whole 'vsbatch run' process (start-up, preflight, submit, work, "
        "report, exit); steady = rows/s between the 10th and 90th percentile of the rows' "
        "finish times (ledger updated_at); cfg = the configured rate",
        "each run in a fresh directory (its own embedded Redis); the environment holds only "
        "VSBATCH_STRIPE_API_BASE, VSBATCH_STRIPE_API_KEY, VSBATCH_RATE_LIMIT (and "
        "VSBATCH_CONCURRENCY=16 for the 'before' rows)",
    ]
    for latency, run in runs:
        result.ratios.append(
            Ratio(
                "defaults",
                f"{run['label']} @{latency:.0f} ms: steady / configured",
                run["steady"] / RATE,
                f"target >= 0.95; overall {run['rows'] / run['process_s'] / RATE:.2f}",
            )
        )
    result.data = {"rate": RATE, "limit": STRIPE_LIMIT, "runs": [r for _, r in runs]}
    return result

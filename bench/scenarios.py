"""The scenarios: throughput, faults, accounts, producer and emulator.

Each starts its own emulator, embedded Redis and workers (a :class:`Stack`), measures vsbatch
next to its baseline in the same run, and returns tables plus the ratios for the summary.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import stripe

from bench import emulator_throughput
from bench.accounts import accounts
from bench.archive import archive
from bench.defaults import defaults
from bench.engine import engine
from bench.harness import (
    API_KEY,
    HTTP_TIMEOUT,
    ROOT,
    Emulator,
    Stack,
    clean_env,
    start_vsbatch_workers,
    vsbatch_env,
    write_csv,
)
from bench.report import Ratio, ScenarioResult, table
from bench.runs import Producer, RunResult, run_naive, run_vsbatch
from bench.startup import startup


@dataclass(frozen=True)
class Sizes:
    """How big each scenario runs (``--quick`` or ``--full``)."""

    label: str
    throughput_rows: int
    sequential_sample: int
    fault_rows: int
    accounts: int
    rows_per_account: int
    producer_rows: int
    emulator_updates: int
    engine_rows: int = 2_000
    account_rate: float | None = None  # accounts scenario: VSBATCH_RATE_LIMIT (None: default)


QUICK = Sizes("quick", 1_000, 20, 500, 4, 250, 100_000, 4_000, 5_000)
FULL = Sizes("full", 5_000, 100, 5_000, 4, 500, 1_000_000, 20_000, 20_000)

LATENCY_MS = 300.0
STRIPE_LIMIT = 100.0  # the emulator's limit in the throughput and faults scenarios
VSBATCH_RATE = 90.0  # vsbatch's configured fleet rate: 90 % of the limit
VSBATCH_RATE_TIGHT = 95.0  # closer to the limit: send-time jitter brings occasional 429s
NAIVE_VARIANTS = ("100/s", "")  # Celery rate_limit per worker: the issue's, and none
FAULTS_NAIVE_RATE = ""
WORKERS = 2
THREADS = 32
HANG_SECONDS = 4.0  # above the workers' 2 s http timeout
FAULT_LEVELS = (0.0, 0.02, 0.10, 0.30)


def naive_cap(ideal: float) -> float:
    """How long a naive Celery run may take before the bench stops waiting for it."""
    return max(20.0, 2.0 * ideal)


def _timeout(rows: int, rate: float) -> float:
    return rows / rate * 6 + 120


def _run_row(run: RunResult, ideal: float, configured: float | None) -> list[Any]:
    app = run.applications
    return [
        run.system,
        configured,
        run.rows,
        run.wall,
        run.rate,
        run.steady,
        run.wall / ideal,
        run.rate_limited,
        app["duplicated_sessions"],
        app["never_applied"],
        run.outcomes.get("failed", 0),
        run.outcomes.get("unfinished", 0),
    ]


RUN_HEADERS = [
    "system",
    "rate cfg/s",
    "rows",
    "wall s",
    "rows/s",
    "steady/s",
    "x ideal",
    "429 rate",
    "dup sess",
    "never appl",
    "failed",
    "unfinished",
]


def fault_config(share: float) -> dict[str, Any]:
    """Emulator faults adding up to ``share`` of requests: 503s, hangs, stored 500s after the
    update was applied, lock timeouts and dropped connections."""
    return {
        "fail_503_rate": 0.4 * share,
        "fail_500_after_rate": 0.2 * share,
        "lock_timeout_rate": 0.2 * share,
        "hang_rate": 0.1 * share,
        "drop_rate": 0.1 * share,
        "hang_seconds": HANG_SECONDS,
        "seed": 7,
    }


def _sessions_csv(stack: Stack, emulator: Emulator, rows: int, name: str) -> tuple[Path, list[str]]:
    ids = emulator.seed(rows)
    path = stack.dir / f"{name}.csv"
    write_csv(path, ((sid, None) for sid in ids))
    return path, ids


def sequential_stripe(url: str, ids: list[str]) -> tuple[float, int]:
    """A plain loop over stripe-python updates, one after the other: seconds per update."""
    client = stripe.StripeClient(
        API_KEY,
        base_addresses={"api": url},
        http_client=stripe.RequestsClient(timeout=HTTP_TIMEOUT * 10),
    )
    errors = 0
    started = time.perf_counter()
    for i, session_id in enumerate(ids):
        try:
            client.v1.identity.verification_sessions.update(
                session_id,
                {
                    "options": {"document": {"require_matching_selfie": True}},
                    "metadata": {"bench": f"r{i}"},
                },
            )
        except stripe.StripeError:
            errors += 1
    return (time.perf_counter() - started) / len(ids), errors


# -- 1. throughput -------------------------------------------------------------------------
def throughput(sizes: Sizes) -> ScenarioResult:
    """vsbatch against the ideal, a sequential stripe-python loop and the naive Celery task."""
    rows = sizes.throughput_rows
    ideal = rows / STRIPE_LIMIT
    result = ScenarioResult("throughput")
    with Stack("throughput") as stack:
        server = stack.redis()
        emulator = Emulator(stack, rate_limit=STRIPE_LIMIT, latency_ms=LATENCY_MS)
        vs_runs: list[tuple[float, RunResult]] = []
        for rate in (VSBATCH_RATE, VSBATCH_RATE_TIGHT):
            emulator.reset()
            env = vsbatch_env(server.url, emulator.url, rate, THREADS)
            producer = Producer(stack, env)
            fleet = start_vsbatch_workers(stack, env, WORKERS)
            path, ids = _sessions_csv(stack, emulator, rows, f"throughput{rate:.0f}")
            run = run_vsbatch(
                producer,
                emulator,
                path,
                ids,
                timeout=_timeout(rows, rate / 2),
                label=f"vsbatch @{rate:.0f}/s",
            )
            vs_runs.append((rate, run))
            fleet.stop()
        vs = vs_runs[0][1]

        naive_runs: list[RunResult] = []
        for celery_rate in NAIVE_VARIANTS:
            emulator.reset()
            ids = emulator.seed(rows)
            naive_runs.append(
                run_naive(
                    stack,
                    server.url,
                    emulator,
                    [(s, None) for s in ids],
                    cap=naive_cap(ideal),
                    workers=WORKERS,
                    threads=THREADS,
                    rate_limit=celery_rate,
                    label=_naive_label(celery_rate),
                )
            )

        emulator.reset()
        sample = emulator.seed(sizes.sequential_sample)
        per_update, seq_errors = sequential_stripe(emulator.url, sample)
    seq_wall = per_update * rows

    table_rows: list[list[Any]] = [
        [
            "ideal (rows / limit)",
            STRIPE_LIMIT,
            rows,
            ideal,
            STRIPE_LIMIT,
            None,
            1.0,
            *([None] * 5),
            ideal / vs.wall,
        ]
    ]
    table_rows += [[*_run_row(run, ideal, rate), run.wall / vs.wall] for rate, run in vs_runs]
    for celery_rate, run in zip(NAIVE_VARIANTS, naive_runs, strict=True):
        fleet_rate = WORKERS * float(celery_rate.split("/")[0]) if celery_rate else None
        table_rows.append([*_run_row(run, ideal, fleet_rate), run.wall / vs.wall])
    table_rows.append(
        [
            f"sequential stripe-python (x{rows / len(sample):.0f} of {len(sample)} timed)",
            None,
            rows,
            seq_wall,
            rows / seq_wall,
            None,
            seq_wall / ideal,
            0,
            0,
            None,
            seq_errors,
            0,
            seq_wall / vs.wall,
        ]
    )
    result.tables.append(
        table(
            f"throughput: {rows:,} rows, emulator latency {LATENCY_MS:.0f} ms, limit "
            f"{STRIPE_LIMIT:.0f}/s; {WORKERS} workers x {THREADS} threads (threads pool) each",
            [*RUN_HEADERS, "vs vsbatch"],
            table_rows,
        )
    )
    tight = vs_runs[1][1]
    result.notes += [
        f"vsbatch: fleet limiter at {VSBATCH_RATE:.0f}/s and at {VSBATCH_RATE_TIGHT:.0f}/s "
        f"(of the emulator's {STRIPE_LIMIT:.0f}/s sliding 1 s window), default (adaptive) "
        "chunk size; wall = "
        "submit start to the last row's updated_at; steady = rows/s between the 10th and 90th "
        f"percentile of finish times; submit took {vs.extra['submit_s']:.2f} s; "
        f"{vs.extra['attempts']:,} attempts for {rows:,} rows; wrong outcomes "
        f"{vs.wrong_outcomes + tight.wrong_outcomes}",
        f"vsbatch @{VSBATCH_RATE_TIGHT:.0f}/s: {tight.rate_limited} x 429 rate_limit; each cuts "
        "the fleet's rate (AIMD), which climbs back within seconds",
        "naive celery: autoretry_for=(Exception,), retry_backoff=True (max_retries 3), "
        "stripe-python's own retries, acks early; 'celery 100/s' adds rate_limit='100/s' per "
        f"worker (fleet {WORKERS * 100}/s). Runs stop after {naive_cap(ideal):.0f} s "
        "('unfinished' rows are still queued or held by a worker)",
        "naive Celery retries: "
        + ", ".join(
            f"{r.system} {r.extra['celery_retries']:,} (extra applications "
            f"{r.applications['extra_applications']:,})"
            for r in naive_runs
        ),
        f"sequential: {per_update * 1000:.0f} ms per update over {len(sample)} updates, "
        f"times {rows:,} rows (not run in full: it would take {seq_wall / 60:.1f} min)",
    ]
    limited, unlimited = naive_runs
    result.ratios += [
        Ratio("throughput", "vsbatch wall / ideal", vs.wall / ideal, "1.00 = at Stripe's limit"),
        Ratio(
            "throughput",
            "vsbatch steady rate / configured",
            vs.steady / VSBATCH_RATE,
            f"@{VSBATCH_RATE:.0f}/s",
        ),
        Ratio(
            "throughput",
            "vsbatch steady rate / configured",
            tight.steady / VSBATCH_RATE_TIGHT,
            f"@{VSBATCH_RATE_TIGHT:.0f}/s, {tight.rate_limited} x 429",
        ),
        Ratio("throughput", "sequential stripe-python / vsbatch", seq_wall / vs.wall, "speed-up"),
        Ratio(
            "throughput",
            "naive celery 100/s: rows done / rows",
            limited.outcomes["succeeded"] / rows,
            f"after {limited.wall:.0f} s; steady {limited.steady:.1f}/s",
        ),
        Ratio(
            "throughput",
            "naive celery no limit: wall / vsbatch",
            unlimited.wall / vs.wall,
            f"{unlimited.rate_limited} x 429, {unlimited.applications['never_applied']} lost",
        ),
        Ratio("throughput", "vsbatch 429s (rate_limit)", vs.rate_limited, "should be 0"),
    ]
    result.data = {
        "rows": rows,
        "ideal_s": ideal,
        "vsbatch": {f"{rate:.0f}": run.as_dict() for rate, run in vs_runs},
        "naive_celery": {r.system: r.as_dict() for r in naive_runs},
        "sequential": {
            "sample": len(sample),
            "seconds_per_update": per_update,
            "extrapolated_wall_s": seq_wall,
            "errors": seq_errors,
        },
    }
    return result


def _naive_label(celery_rate: str) -> str:
    return f"naive celery {celery_rate}" if celery_rate else "naive celery, no rate_limit"


# -- 2. faults -----------------------------------------------------------------------------
def faults(sizes: Sizes) -> ScenarioResult:
    """vsbatch and the naive Celery task under 0, 2, 10 and 30 % injected faults."""
    rows = sizes.fault_rows
    ideal = rows / STRIPE_LIMIT
    result = ScenarioResult("faults")
    vs_runs: list[tuple[float, RunResult]] = []
    naive_runs: list[tuple[float, RunResult]] = []
    with Stack("faults") as stack:
        server = stack.redis()
        emulator = Emulator(stack, rate_limit=STRIPE_LIMIT, latency_ms=LATENCY_MS)
        env = vsbatch_env(server.url, emulator.url, VSBATCH_RATE, THREADS)
        producer = Producer(stack, env)
        fleet = start_vsbatch_workers(stack, env, WORKERS)
        for share in FAULT_LEVELS:
            emulator.reset(**fault_config(share))
            path, ids = _sessions_csv(stack, emulator, rows, f"faults{share}")
            run = run_vsbatch(
                producer,
                emulator,
                path,
                ids,
                timeout=_timeout(rows, VSBATCH_RATE / 2),
                label=f"vsbatch {share:.0%}",
            )
            vs_runs.append((share, run))
        fleet.stop()
        # The naive task's no-fault runs are in the throughput scenario. Its fault runs use
        # the variant without Celery's rate_limit: with it, the threads pool stalls at a few
        # tasks/s (see throughput), so a run would cover only a few rows.
        for share in FAULT_LEVELS[1:]:
            emulator.reset(**fault_config(share))
            ids = emulator.seed(rows)
            run = run_naive(
                stack,
                server.url,
                emulator,
                [(s, None) for s in ids],
                cap=naive_cap(ideal),
                workers=WORKERS,
                threads=THREADS,
                rate_limit=FAULTS_NAIVE_RATE,
                label=_naive_label(FAULTS_NAIVE_RATE),
            )
            naive_runs.append((share, run))

    base = vs_runs[0][1].wall
    headers = [
        "system",
        "faults",
        "wall s",
        "x no-fault",
        "x ideal",
        "succeeded",
        "failed",
        "unfinished",
        "other",
        "dup sess",
        "never appl",
        "wrong",
        "429 rate",
        "injected",
    ]
    rows_out: list[list[Any]] = []
    for (share, run), label in [(r, "vsbatch") for r in vs_runs] + [
        (r, "naive, no rate_limit") for r in naive_runs
    ]:
        other = sum(
            n for o, n in run.outcomes.items() if o not in ("succeeded", "failed", "unfinished")
        )
        rows_out.append(
            [
                label,
                f"{share:.0%}",
                run.wall,
                run.wall / base if label == "vsbatch" else None,
                run.wall / ideal,
                run.outcomes.get("succeeded", 0),
                run.outcomes.get("failed", 0),
                run.outcomes.get("unfinished", 0),
                other,
                run.applications["duplicated_sessions"],
                run.applications["never_applied"],
                run.wrong_outcomes if label == "vsbatch" else None,
                run.rate_limited,
                sum(run.faults.values()),
            ]
        )
    result.tables.append(
        table(
            f"faults: {rows:,} rows per run, latency {LATENCY_MS:.0f} ms, limit "
            f"{STRIPE_LIMIT:.0f}/s, hangs {HANG_SECONDS:.0f} s > http timeout "
            f"{HTTP_TIMEOUT:.0f} s",
            headers,
            rows_out,
        )
    )
    result.notes += [
        "fault mix per level p: 503 0.4p, stored 500 after applying 0.2p, lock_timeout 0.2p, "
        "hang 0.1p, dropped connection 0.1p (emulator seed 7); 'injected' = faults drawn",
        "dup sess = sessions the emulator applied more than once; never appl = sessions never "
        "applied; wrong = vsbatch rows succeeded but never applied, or failed but applied",
        "naive celery 'failed' rows are lost: its tasks gave up after max_retries and only a "
        "log line says so",
    ]
    for share, run in vs_runs[1:]:
        result.ratios.append(
            Ratio("faults", f"vsbatch wall {share:.0%} faults / no faults", run.wall / base, "")
        )
    result.ratios.append(
        Ratio(
            "faults",
            "vsbatch duplicated sessions (all levels)",
            sum(r.applications["duplicated_sessions"] for _, r in vs_runs),
            "must be 0",
        )
    )
    result.ratios.append(
        Ratio(
            "faults",
            "vsbatch wrong outcomes (all levels)",
            sum(r.wrong_outcomes for _, r in vs_runs),
            "must be 0",
        )
    )
    for share, run in naive_runs:
        result.ratios.append(
            Ratio(
                "faults",
                f"naive celery {share:.0%}: duplicated sessions",
                run.applications["duplicated_sessions"],
                f"{run.applications['never_applied']} never applied",
            )
        )
    result.data = {
        "rows": rows,
        "vsbatch": {f"{s:.2f}": r.as_dict() for s, r in vs_runs},
        "naive_celery": {f"{s:.2f}": r.as_dict() for s, r in naive_runs},
    }
    return result


# -- 4. producer ---------------------------------------------------------------------------
def producer(sizes: Sizes) -> ScenarioResult:
    """Submit a large CSV (no workers): time, peak memory, Redis memory, broker messages."""
    rows = sizes.producer_rows
    result = ScenarioResult("producer")
    with Stack("producer") as stack:
        path = stack.dir / "producer.csv"
        started = time.perf_counter()
        write_csv(path, ((f"vs_bench{i:014d}", None) for i in range(rows)))
        generated = time.perf_counter() - started
        server = stack.redis()
        client = redis.Redis.from_url(server.url)
        stack.callback(client.close)
        used_before = int(client.info("memory")["used_memory"])
        child = subprocess.run(
            [sys.executable, "-m", "bench.producer_child", str(path), server.url],
            cwd=ROOT,
            env=clean_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            raise RuntimeError(f"producer child failed:\n{child.stderr[-3000:]}")
        figures: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
        used_after = int(client.info("memory")["used_memory"])
        messages = int(client.llen("vsbatch"))
        size_mb = path.stat().st_size / 1e6
    seconds = float(figures["seconds"])
    growth_mib = (figures["peak_after_kib"] - figures["rss_before_kib"]) / 1024
    per_row = (used_after - used_before) / rows
    result.tables.append(
        table(
            f"producer: {rows:,}-row CSV ({size_mb:.0f} MB) submitted with submit_csv to an "
            "embedded Redis, no workers (fresh subprocess)",
            [
                "rows",
                "seconds",
                "rows/s",
                "RSS before MiB",
                "peak RSS MiB",
                "peak - before MiB",
                "Redis B/row",
                "messages",
                "rows/message",
            ],
            [
                [
                    rows,
                    seconds,
                    rows / seconds,
                    figures["rss_before_kib"] / 1024,
                    figures["peak_after_kib"] / 1024,
                    growth_mib,
                    per_row,
                    messages,
                    rows / messages if messages else None,
                ]
            ],
        )
    )
    result.notes.append(
        f"CSV generated in {generated:.1f} s (not counted); Redis used_memory "
        f"{used_before / 2**20:.1f} -> {used_after / 2**20:.1f} MiB; broker messages = LLEN of "
        f"the 'vsbatch' queue; chunk size {figures['chunk_size']} (the default); "
        f"rows queued {figures['queued']:,}"
    )
    result.ratios += [
        Ratio("producer", "rows/s submitted", rows / seconds, ""),
        Ratio("producer", "producer peak RSS growth MiB", growth_mib, "flat = streamed"),
        Ratio("producer", "Redis bytes per queued row", per_row, ""),
        Ratio("producer", "broker messages / rows", messages / rows, ""),
    ]
    result.data = {
        "rows": rows,
        "csv_mb": size_mb,
        "seconds": seconds,
        "redis_used_before": used_before,
        "redis_used_after": used_after,
        "messages": messages,
        **figures,
    }
    return result


# -- 5. emulator ---------------------------------------------------------------------------
def emulator(sizes: Sizes) -> ScenarioResult:
    """The emulator's own capacity (no limit, latency or faults): it must not be the bottleneck."""
    result = ScenarioResult("emulator")
    runs = [
        emulator_throughput.run_bench(sizes.emulator_updates, threads=2, procs=2, client=client)
        for client in ("stdlib", "httpx")
    ]
    result.tables.append(
        table(
            f"emulator capacity: {sizes.emulator_updates:,} updates, no limit/latency/faults, "
            "2 client processes x 2 threads (bench/emulator_throughput.py)",
            ["client", "updates/s", "p50 ms", "p99 ms", "failures", "x 100/s needed"],
            [
                [
                    str(r["client"]),
                    r["updates_per_s"],
                    r["p50_ms"],
                    r["p99_ms"],
                    r["failures"],
                    float(r["updates_per_s"]) / STRIPE_LIMIT,
                ]
                for r in runs
            ],
        )
    )
    best = max(float(r["updates_per_s"]) for r in runs)
    result.ratios.append(
        Ratio("emulator", "emulator capacity / 100/s", best / STRIPE_LIMIT, "headroom")
    )
    result.data = {"runs": runs}
    return result


SCENARIOS: dict[str, Callable[[Sizes], ScenarioResult]] = {
    "defaults": defaults,  # the headline: `vsbatch run FILE` as a user types it
    "engine": engine,  # target 2: the work per row of one worker process
    "throughput": throughput,
    "faults": faults,
    "accounts": accounts,
    "producer": producer,
    "emulator": emulator,
    "startup": startup,
    "archive": archive,  # issue 15: rows/s from the ledger into SQL, bytes per row
}

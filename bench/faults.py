"""The faults scenario: vsbatch and the naive Celery task under 0, 2, 10 and 30 % injected
faults (503s, stored 500s after applying, lock timeouts, hangs and dropped connections).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.comparison import (
    LATENCY_MS,
    STRIPE_LIMIT,
    THREADS,
    VSBATCH_RATE,
    WORKERS,
    naive_cap,
    naive_label,
    run_timeout,
    sessions_csv,
)
from bench.harness import HTTP_TIMEOUT, Emulator, Stack, start_vsbatch_workers, vsbatch_env
from bench.report import Ratio, ScenarioResult, table
from bench.runs import Producer, RunResult, run_naive, run_vsbatch

if TYPE_CHECKING:
    from bench.sizes import Sizes

FAULTS_NAIVE_RATE = ""
HANG_SECONDS = 4.0  # above the workers' 2 s http timeout
FAULT_LEVELS = (0.0, 0.02, 0.10, 0.30)


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
            path, ids = sessions_csv(stack, emulator, rows, f"faults{share}")
            run = run_vsbatch(
                producer,
                emulator,
                path,
                ids,
                timeout=run_timeout(rows, VSBATCH_RATE / 2),
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
                label=naive_label(FAULTS_NAIVE_RATE),
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

"""The throughput scenario: vsbatch against the ideal (rows / Stripe's limit), a sequential
stripe-python loop and the naive Celery task, with and without Celery's rate_limit.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import stripe

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
from bench.harness import API_KEY, HTTP_TIMEOUT, Emulator, Stack, start_vsbatch_workers, vsbatch_env
from bench.report import Ratio, ScenarioResult, table
from bench.runs import Producer, RunResult, run_naive, run_vsbatch

if TYPE_CHECKING:
    from bench.sizes import Sizes

VSBATCH_RATE_TIGHT = 95.0  # closer to the limit: send-time jitter brings occasional 429s
NAIVE_VARIANTS = ("100/s", "")  # Celery rate_limit per worker: the issue's, and none


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
            path, ids = sessions_csv(stack, emulator, rows, f"throughput{rate:.0f}")
            run = run_vsbatch(
                producer,
                emulator,
                path,
                ids,
                timeout=run_timeout(rows, rate / 2),
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
                    label=naive_label(celery_rate),
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

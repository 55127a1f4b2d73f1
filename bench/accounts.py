"""The connected-accounts scenario: several Stripe accounts at once, as a user runs them.

Four connected accounts, each limited by the emulator to Stripe's test-mode 25/s over a
sliding second, their rows interleaved in one file as a platform's export lists them. The
fleet is two ``vsbatch worker`` processes with the settings a user gives (Redis, the API base,
a test key): the default rate per account and threads sized by default, nothing tuned.
``--account-rate R`` sets ``VSBATCH_RATE_LIMIT=R`` instead. The measure is the aggregate
steady rate against the sum of the accounts' limits (issue 12: at least 0.95), and how long
the limiter took to recover from each 429 (sampled from its state in Redis while the batch
ran, see :mod:`bench.recovery`).
"""

from __future__ import annotations

from typing import Any

from bench.harness import API_KEY, Emulator, Stack, clean_env, start_vsbatch_workers, write_csv
from bench.recovery import RateTrace, recoveries, summary
from bench.report import Ratio, ScenarioResult, table
from bench.runs import Producer, run_vsbatch
from vsbatch.worker.sizing import worker_threads

ACCOUNT_LIMIT = 25.0  # Stripe's test-mode limit, per connected account
LATENCY_MS = 300.0
WORKERS = 2


def _env(redis_url: str, emulator_url: str, rate: float | None) -> dict[str, str]:
    """What a user sets for a fleet: Redis, the API base and a test key (and a rate if told)."""
    env = clean_env(
        VSBATCH_REDIS_URL=redis_url,
        VSBATCH_STRIPE_API_BASE=emulator_url,
        VSBATCH_STRIPE_API_KEY=API_KEY,
        VSBATCH_LOG_LEVEL="WARNING",
    )
    if rate is not None:
        env["VSBATCH_RATE_LIMIT"] = f"{rate:g}"
    return env


def accounts(sizes: Any) -> ScenarioResult:
    """Several connected accounts at once: aggregate rate against the sum of their limits."""
    n, per, asked = sizes.accounts, sizes.rows_per_account, sizes.account_rate
    names = [f"acct_bench{i}" for i in range(n)]
    total_limit = n * ACCOUNT_LIMIT
    rows = n * per
    ideal = rows / total_limit
    result = ScenarioResult("accounts")
    with Stack("accounts") as stack:
        server = stack.redis()
        emulator = Emulator(stack, rate_limit=ACCOUNT_LIMIT, latency_ms=LATENCY_MS)
        env = _env(server.url, emulator.url, asked)
        producer = Producer(stack, env)
        rate = producer.settings.effective_rate_limit
        threads = worker_threads(producer.settings)
        fleet = start_vsbatch_workers(stack, env, WORKERS)
        seeded = {name: emulator.seed(per, account=name) for name in names}
        # Rows interleaved across accounts, as a platform's export would list them.
        pairs = [(seeded[name][i], name) for i in range(per) for name in names]
        path = stack.dir / "accounts.csv"
        write_csv(path, pairs)
        with RateTrace(producer.deps.limiter, names) as trace:
            run = run_vsbatch(
                producer,
                emulator,
                path,
                [s for s, _ in pairs],
                timeout=rows / (n * rate) * 6 + 120,
                label="vsbatch",
            )
        fleet.stop()
    episodes, median, longest = summary(recoveries(trace.samples, rate))
    setting = f"VSBATCH_RATE_LIMIT={asked:g}" if asked is not None else "default"
    per_account: dict[str, float] = run.extra["per_account_steady"]
    result.tables.append(
        table(
            f"accounts: {n} connected accounts x {per:,} rows (interleaved), emulator limit "
            f"{ACCOUNT_LIMIT:.0f}/s per account (sliding 1 s), latency {LATENCY_MS:.0f} ms; "
            f"{WORKERS} 'vsbatch worker' x {threads} threads (sized), rate {rate:g}/s per "
            f"account ({setting})",
            [
                "rows",
                "wall s",
                "ideal s",
                "x ideal",
                "steady/s",
                "sum limits/s",
                "steady / sum",
                "steady / cfg",
                "429 rate",
                "recoveries",
                "median s",
                "max s",
                "dup sess",
                "failed",
            ],
            [
                [
                    rows,
                    run.wall,
                    ideal,
                    run.wall / ideal,
                    run.steady,
                    total_limit,
                    run.steady / total_limit,
                    run.steady / (n * rate),
                    run.rate_limited,
                    episodes,
                    median,
                    longest,
                    run.applications["duplicated_sessions"],
                    run.outcomes.get("failed", 0),
                ]
            ],
        )
    )
    result.tables.append(
        table(
            "accounts: steady rate per account",
            ["account", "steady/s", "configured/s", "limit/s"],
            [[name, steady, rate, ACCOUNT_LIMIT] for name, steady in per_account.items()],
        )
    )
    result.notes += [
        "steady = rows/s between the 10th and 90th percentile of the rows' finish times",
        "recoveries = episodes of an account's limiter rate below the configured rate (a 429 "
        "cut it), sampled every 50 ms; median s / max s = how long they lasted",
    ]
    result.ratios += [
        Ratio("accounts", "aggregate steady rate / sum of limits", run.steady / total_limit, ""),
        Ratio("accounts", "aggregate steady rate / sum of configured", run.steady / (n * rate), ""),
        Ratio("accounts", "wall / ideal", run.wall / ideal, ""),
        Ratio("accounts", "429s (rate_limit)", run.rate_limited, ""),
    ]
    if longest is not None:
        result.ratios.append(
            Ratio("accounts", "longest recovery after a 429, s", longest, "seconds, not tens")
        )
    result.data = {
        "accounts": n,
        "rows": rows,
        "ideal_s": ideal,
        "rate": rate,
        "threads_per_worker": threads,
        "run": run.as_dict(),
        "per_account_steady": per_account,
        "recoveries_s": recoveries(trace.samples, rate),
    }
    return result

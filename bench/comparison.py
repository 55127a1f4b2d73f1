"""What the throughput and faults scenarios share: vsbatch and the naive Celery task side by
side on one emulator (its limit and latency), the fleet both run as (workers x threads), and
the small steps both take (seeding a CSV, naming a naive run, how long to wait for a run).
"""

from __future__ import annotations

from pathlib import Path

from bench.harness import Emulator, Stack, write_csv

LATENCY_MS = 300.0
STRIPE_LIMIT = 100.0  # the emulator's limit in the throughput and faults scenarios
VSBATCH_RATE = 90.0  # vsbatch's configured fleet rate: 90 % of the limit
WORKERS = 2
THREADS = 32


def naive_cap(ideal: float) -> float:
    """How long a naive Celery run may take before the bench stops waiting for it."""
    return max(20.0, 2.0 * ideal)


def run_timeout(rows: int, rate: float) -> float:
    return rows / rate * 6 + 120


def sessions_csv(stack: Stack, emulator: Emulator, rows: int, name: str) -> tuple[Path, list[str]]:
    ids = emulator.seed(rows)
    path = stack.dir / f"{name}.csv"
    write_csv(path, ((sid, None) for sid in ids))
    return path, ids


def naive_label(celery_rate: str) -> str:
    return f"naive celery {celery_rate}" if celery_rate else "naive celery, no rate_limit"

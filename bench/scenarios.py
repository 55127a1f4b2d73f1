"""The scenarios' sizes (``--quick`` and ``--full``) and their registry, :data:`SCENARIOS`:
defaults, engine, throughput, faults, accounts, producer, emulator, startup and archive, each
in its own module.

Each starts its own emulator, embedded Redis and workers (a :class:`Stack`), measures vsbatch
next to its baseline in the same run, and returns tables plus the ratios for the summary.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.accounts import accounts
from bench.archive import archive
from bench.defaults import defaults
from bench.emulator_capacity import emulator
from bench.engine import engine
from bench.faults import faults
from bench.producer import producer
from bench.report import ScenarioResult
from bench.startup import startup
from bench.throughput import throughput


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

"""The scenarios' registry, :data:`SCENARIOS` (their sizes are in ``bench/sizes.py``):
defaults, engine, throughput, faults, accounts, producer, emulator, startup and archive, each
in its own module.

Each starts its own emulator, embedded Redis and workers (a :class:`Stack`), measures vsbatch
next to its baseline in the same run, and returns tables plus the ratios for the summary.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.accounts import accounts
from bench.archive import archive
from bench.defaults import defaults
from bench.emulator_capacity import emulator
from bench.engine import engine
from bench.faults import faults
from bench.producer import producer
from bench.report import ScenarioResult
from bench.sizes import Sizes
from bench.startup import startup
from bench.throughput import throughput

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

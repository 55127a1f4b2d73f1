"""How big each scenario runs: :class:`Sizes`, and the two sets of sizes, ``--quick``
(:data:`QUICK`) and ``--full`` (:data:`FULL`). Every scenario takes one; none imports the
registry (``bench/scenarios.py``) that names them all.
"""

from __future__ import annotations

from dataclasses import dataclass


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

"""The emulator scenario: the emulator's own capacity with no limit, latency or faults (run
by :mod:`bench.emulator_throughput`); it must not be the bottleneck of the other scenarios.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench import emulator_throughput
from bench.comparison import STRIPE_LIMIT
from bench.report import Ratio, ScenarioResult, table

if TYPE_CHECKING:
    from bench.sizes import Sizes


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

"""The startup scenario: how long ``vsbatch --help`` and ``vsbatch status`` take to start.

Each command runs as a whole process several times in a row; the table gives the minimum and
the median of wall and CPU seconds (CPU: the child's user + system time, from the kernel's
accounting of reaped children). On a shared machine the minimum and the CPU time are the
fair figures; the wall median shows the load. ``status`` runs twice: attached to an embedded
server that another process runs (the usual case: a worker or ``run`` is up), and cold (it
starts the data directory's server, reads, and stops it). Floor rows time bare Python and
the imports no ``vsbatch`` command can avoid, to show what is left to gain.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bench.harness import clean_env
from bench.report import Ratio, ScenarioResult, table
from vsbatch.store.local_redis import LocalRedis

if TYPE_CHECKING:
    from bench.scenarios import Sizes

TARGET_S = 0.3  # issue 12: --help and status start in 0.3 s or less


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(
    args: list[str], env: dict[str, str], runs: int
) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``runs`` runs of ``args`` (after one warm-up run)."""
    walls: list[float] = []
    cpus: list[float] = []
    for i in range(runs + 1):
        cpu0 = _children_cpu()
        t0 = time.perf_counter()
        proc = subprocess.run(args, env=env, capture_output=True, timeout=120, check=False)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{args[1:]} exited {proc.returncode}: {proc.stderr[-500:]!r}")
        if i:  # the first run warms the file cache
            walls.append(wall)
            cpus.append(_children_cpu() - cpu0)
    return walls, cpus


FIELDS = ["command", "wall min s", "wall median s", "cpu min s", "cpu median s"]


def startup(sizes: Sizes) -> ScenarioResult:
    """Startup of ``vsbatch --help`` and ``vsbatch status`` (min/median of several runs)."""
    runs = 15 if sizes.label == "full" else 7
    result = ScenarioResult("startup")
    python = sys.executable
    rows: list[tuple[str, float, float, float, float]] = []
    medians: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="vsbatch-bench-startup-") as tmp:
        attached, cold = Path(tmp, "attached"), Path(tmp, "cold")
        attached.mkdir(mode=0o700)
        cold.mkdir(mode=0o700)
        commands = [
            ("vsbatch --help", [python, "-m", "vsbatch", "--help"], cold),
            ("vsbatch status (server running)", [python, "-m", "vsbatch", "status"], attached),
            ("vsbatch status (cold: starts one)", [python, "-m", "vsbatch", "status"], cold),
            ("floor: python -c pass", [python, "-c", "pass"], cold),
            ("floor: import typer, rich", [python, "-c", "import typer, rich.console"], cold),
            (
                "floor: import redis, pydantic_settings",
                [python, "-c", "import redis, pydantic_settings"],
                cold,
            ),
        ]
        # The running server of the ``attached`` directory, as a worker would hold it.
        with LocalRedis(attached / "redis"):
            for label, args, data_dir in commands:
                env = clean_env(VSBATCH_DATA_DIR=str(data_dir))
                walls, cpus = time_command(args, env, runs)
                medians[label] = statistics.median(walls)
                row = (label, min(walls), medians[label], min(cpus), statistics.median(cpus))
                rows.append(row)
    result.tables.append(
        table(
            f"startup: {runs} runs each after a warm-up, whole processes "
            f"({os.cpu_count()} CPUs; target {TARGET_S} s)",
            FIELDS,
            rows,
        )
    )
    result.notes.append(
        "status needs redis-py and pydantic-settings (the floor row): it cannot start faster"
        " than they import"
    )
    for label in ("vsbatch --help", "vsbatch status (server running)"):
        result.ratios.append(
            Ratio("startup", f"{label}: median wall s", medians[label], f"target <= {TARGET_S}")
        )
    result.data = {
        "runs": runs,
        "rows": [dict(zip(FIELDS, row, strict=True)) for row in rows],
    }
    return result

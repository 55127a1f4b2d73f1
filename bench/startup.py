"""The startup scenario: how long ``vsbatch --help`` and ``vsbatch status`` take to start.

Each command runs as a whole process several times in a row; the table gives the minimum and
the median of wall and CPU seconds (CPU: the child's user + system time, from the kernel's
accounting of reaped children). On a shared machine the minimum and the CPU time are the
fair figures; the wall median shows the load. ``status`` runs twice: attached to an embedded
server that another process runs (the usual case: a worker or ``run`` is up), and cold (it
starts the data directory's server, reads, and stops it). Floor rows time bare Python and
the imports no ``vsbatch`` command can avoid, to show what is left to gain.

Bytecode: an installed vsbatch runs from ``.pyc`` files (the image compiles them at build;
pip and ``uv run`` write them on the first run). A shell with ``PYTHONDONTWRITEBYTECODE=1``
and no ``__pycache__`` in the environment (this workplace's) compiles every module of
vsbatch and its dependencies from source at every start, which costs more than the imports'
own work. So each process here runs with a private bytecode cache (``PYTHONPYCACHEPREFIX``,
filled by the warm-up run: the installed case, the headline rows), and the commands run once
more with ``PYTHONDONTWRITEBYTECODE=1`` and no private cache (``no .pyc``), as before.
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
    from bench.sizes import Sizes

TARGET_S = 0.3  # issue 12: --help and status start in 0.3 s or less
# What any typer command that prints through rich costs: typer builds pydantic adapters for
# the options it parses (typer 0.29 does), then rich's console prints.
MINIMAL_CLI = """
import typer
from rich.console import Console
app = typer.Typer()
@app.callback()
def main(version: bool = False) -> None: ...
@app.command()
def status(batch: str | None = typer.Argument(None), watch: bool = False) -> None:
    Console().print("ok")
app(["status"])
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bytecode_env(env: dict[str, str], cache: Path | None) -> dict[str, str]:
    """``env`` with ``cache`` as a bytecode cache it writes; None: no cache, no writing."""
    env = {
        k: v for k, v in env.items() if k not in ("PYTHONPYCACHEPREFIX", "PYTHONDONTWRITEBYTECODE")
    }
    if cache is None:
        return {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    return {**env, "PYTHONPYCACHEPREFIX": str(cache)}


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
        vsbatch = [python, "-m", "vsbatch"]
        commands = [
            ("vsbatch --help", [*vsbatch, "--help"], cold),
            ("vsbatch status (server running)", [*vsbatch, "status"], attached),
            ("vsbatch status (cold: starts one)", [*vsbatch, "status"], cold),
        ]
        floors = [
            ("floor: python -c pass", [python, "-c", "pass"], cold),
            ("floor: import typer (--help)", [python, "-c", "import typer"], cold),
            (
                "floor: a typer command printing with rich (status)",
                [python, "-c", MINIMAL_CLI],
                cold,
            ),
            (
                "for scale: import redis (status no longer does)",
                [python, "-c", "import redis"],
                cold,
            ),
        ]
        cache = Path(tmp, "pyc")
        plan = [(label, args, d, cache) for label, args, d in [*commands, *floors]]
        plan += [(f"{label} (no .pyc)", args, d, None) for label, args, d in commands]
        # The running server of the ``attached`` directory, as a worker would hold it.
        with LocalRedis(attached / "redis"):
            for label, args, data_dir, pyc in plan:
                env = bytecode_env(clean_env(VSBATCH_DATA_DIR=str(data_dir)), pyc)
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
        "status is bounded by typer (which coerces options with pydantic) and rich (the floor"
        " row: a one-command typer app printing a line); 'no .pyc' rows compile at each start"
    )
    for label in ("vsbatch --help", "vsbatch status (server running)"):
        for shown in (label, f"{label} (no .pyc)"):
            note = f"target <= {TARGET_S}" if shown == label else "compiles at each start"
            result.ratios.append(Ratio("startup", f"{shown}: median wall s", medians[shown], note))
    result.data = {
        "runs": runs,
        "rows": [dict(zip(FIELDS, row, strict=True)) for row in rows],
    }
    return result

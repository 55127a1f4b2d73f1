"""``uv run python -m bench [--quick | --full] [--only NAME ...] [--json PATH]``.

Runs the scenarios one after the other (each with its own emulator, embedded Redis and
workers), prints one table per scenario and a final summary of ratios measured in this run.
The first, ``defaults``, is the headline: ``vsbatch run FILE`` as a user types it, default
settings, at 300 ms and 1 s latency, next to the old fixed 16 threads.
``--quick`` (the default) takes about six minutes on a 2-core machine; ``--full`` uses the
sizes of issues 3 and 6 (5,000 rows at 300 ms and 100/s, a 1,000,000-row CSV) and takes
about half an hour.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
import traceback
import warnings
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.report import ScenarioResult, fmt, table
from bench.scenarios import SCENARIOS
from bench.sizes import FULL, QUICK


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="vsbatch benchmarks: ratios measured side by side."
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes (default, ~6 min)")
    size.add_argument("--full", action="store_true", help="the issues' sizes (~30 min)")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(SCENARIOS),
        metavar="NAME",
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--account-rate",
        type=float,
        metavar="R",
        help="VSBATCH_RATE_LIMIT in the accounts scenario (default: unset, vsbatch's default)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="save the results as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scenarios; exit status 1 if any failed."""
    args = _args(argv)
    sizes = FULL if args.full else QUICK
    if args.account_rate:
        sizes = replace(sizes, account_rate=args.account_rate)
    names = args.only or list(SCENARIOS)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    command = "uv run python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv)
    started = datetime.now(UTC)
    print(f"command: {command.strip()}")
    print(
        f"date: {started:%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs; Python "
        f"{platform.python_version()}; sizes: {sizes.label}; scenarios: {', '.join(names)}",
        flush=True,
    )
    results: list[ScenarioResult] = []
    failed: dict[str, str] = {}
    for name in names:
        print(f"\n== {name} ==", flush=True)
        t0 = time.perf_counter()
        try:
            result = SCENARIOS[name](sizes)
        except KeyboardInterrupt:
            print("\ninterrupted: every process this scenario started was stopped")
            return 130
        except Exception as exc:
            traceback.print_exc()
            failed[name] = f"{type(exc).__name__}: {exc}"
            continue
        result.seconds = time.perf_counter() - t0
        results.append(result)
        print(result.render())
        print(f"({name}: {result.seconds:.0f} s)", flush=True)

    rows: list[list[Any]] = [
        [r.scenario, r.name, r.value, r.note] for res in results for r in res.ratios
    ]
    print("\n== summary ==")
    print(table("ratios measured in this run", ["scenario", "measure", "value", "note"], rows))
    for name, error in failed.items():
        print(f"FAILED {name}: {error}")
    total = (datetime.now(UTC) - started).total_seconds()
    print(f"total {fmt(total, 0)} s; command: {command.strip()}")
    if args.json:
        document = {
            "command": command.strip(),
            "started": started.isoformat(),
            "cpus": os.cpu_count(),
            "sizes": sizes.label,
            "scenarios": {r.name: {"seconds": r.seconds, **r.data} for r in results},
            "summary": [
                {"scenario": r.scenario, "measure": r.name, "value": r.value, "note": r.note}
                for res in results
                for r in res.ratios
            ],
            "failed": failed,
        }
        args.json.write_text(json.dumps(document, indent=2, default=str))
        print(f"results saved to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

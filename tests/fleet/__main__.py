"""``python -m tests.fleet [--quick] [--only a,c]``: run the fleet scenarios, print the table.

Needs root and ``ip netns`` (it prints why and exits 0 otherwise, as a skip). Exit status 1
when any scenario broke an invariant or did not finish. Ctrl-C or SIGTERM stop the run and
remove every namespace, link and process it made.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.fleet.netns import sweep_stale, terminate_on_sigterm, unavailable
from tests.fleet.scenarios import SCENARIOS, Result, Sizes, describe, open_fleet, run_scenario


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.fleet", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rows, shorter faults")
    parser.add_argument("--only", default="", help="scenario letters, comma-separated (a..e)")
    parser.add_argument("--keep", type=Path, help="keep logs and data under this directory")
    return parser


def table(results: Sequence[Result]) -> str:
    """The results as a Markdown table."""
    rows = [describe(r) for r in results]
    if not rows:
        return ""
    heads = list(rows[0])
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    lines += ["| " + " | ".join(str(row[h]) for h in heads) + " |" for row in rows]
    return "\n".join(lines)


def run(sizes: Sizes, letters: set[str], workdir: Path) -> list[Result]:
    """Run the chosen scenarios on one fleet, printing a line as each ends."""
    results: list[Result] = []
    with open_fleet(workdir, sizes) as fleet:
        for name, scenario in SCENARIOS.items():
            if letters and name[0] not in letters:
                continue
            print(f"-- {name} ...", flush=True)
            try:
                result = run_scenario(fleet, name, scenario)
            except TimeoutError as exc:
                result = Result(name, rows=sizes.rows, problems=[str(exc)])
            results.append(result)
            print(f"   {result.evidence}; {describe(result)}", flush=True)
            for problem in result.problems:
                print(f"   PROBLEM: {problem}", flush=True)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    reason = unavailable()
    if reason is not None:
        print(f"fleet test skipped: {reason}")
        return 0
    terminate_on_sigterm()
    for name in sweep_stale():
        print(f"removed {name}, left by an earlier run")
    sizes = Sizes.quick() if args.quick else Sizes.full()
    letters = {x.strip() for x in args.only.split(",") if x.strip()}
    started = time.monotonic()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        results = run(sizes, letters, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="vsbatch-fleet-") as tmp:
            results = run(sizes, letters, Path(tmp))
    print()
    print(table(results))
    print(f"\n{'quick' if args.quick else 'full'} run: {time.monotonic() - started:.0f} s")
    return 1 if any(r.problems or not r.exactly_once for r in results) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: the fleet was taken down")
        sys.exit(130)

"""``vsbatch demo``: the whole pipeline on the example file, against a private emulator.

Starts the emulator on a free loopback port, seeds the example's sessions (most awaiting
input, a few in statuses that cannot be updated, one left missing), then runs
``examples/updates.csv`` exactly as ``vsbatch run`` would, with an embedded Redis and
in-process workers, and prints the reconciliation report.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from vsbatch.cli.results import archive_ended
from vsbatch.config import load_settings
from vsbatch.errors import InputError
from vsbatch.intake.csv_reader import read_updates
from vsbatch.intake.stage import SubmitOptions, submit_csv
from vsbatch.ops import reports
from vsbatch.ops.next_steps import exit_code, print_next_steps
from vsbatch.worker.runtime import deps_for, work_until_done
from vsbatch.worker.tasks import enqueue_chunk

EXAMPLE = Path("examples") / "updates.csv"
DEMO_KEY = "sk_test_vsbatch_demo_key"
# Sessions the demo seeds in other statuses (or not at all), to show every kind of outcome.
SPECIAL = {
    "vs_demo00000000000000000010": "verified",
    "vs_demo00000000000000000011": "canceled",
    "vs_demo00000000000000000012": "missing",
}


def run_demo(out: Console, err: Console, *, concurrency: int = 8, example: Path = EXAMPLE) -> int:
    """Run the example through the pipeline; return the exit code ``vsbatch run`` gives the
    same outcome (1: the example's missing session fails)."""
    from vsbatch.emulator.server import EmulatorConfig, EmulatorServer

    if not example.is_file():
        raise InputError(f"{example} not found: run the demo from the project's folder")
    emulator = EmulatorServer(EmulatorConfig(rate_limit=25, latency_ms=80, latency_jitter_ms=40))
    emulator.start()
    try:
        ids = sorted({row.session_id for row in read_updates(example) if row.session_id})
        for session_id in ids:
            status = SPECIAL.get(session_id, "requires_input")
            if status != "missing":
                emulator.seed(count=1, ids=[session_id], status=status)
        err.print(f"emulator on {emulator.url} with {len(ids)} sessions")
        settings = load_settings(
            stripe_api_key=DEMO_KEY,
            stripe_api_key_file=None,  # the demo's key, whatever secret the environment names
            stripe_api_base=emulator.url,
            concurrency=concurrency,
            rate_limit=20,
        )
        with deps_for(settings) as deps:
            # Always a new batch: each demo has its own fresh emulator, whatever an earlier
            # (interrupted) demo left open.
            options = SubmitOptions(name="demo", new=True)
            batch = submit_csv(deps, example, enqueue_chunk, options)
            batch = work_until_done(deps, batch.id, err)
            archive_ended(deps.ledger, settings, batch)  # as ``run`` does: query it in SQL
            reports.print_table(out, deps.ledger, batch)
            print_next_steps(err, deps.ledger, batch)
            code = exit_code(batch)
            if code:
                # The example fails and rejects a row on purpose; the exit code is still run's.
                err.print(
                    f"exit code {code}, as 'vsbatch run' gives it: the example has a missing"
                    " session (failed) and an invalid row (rejected) on purpose",
                    highlight=False,
                )
            return code
    finally:
        emulator.stop()

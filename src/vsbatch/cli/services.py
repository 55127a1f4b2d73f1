"""The long-running and helper commands: ``worker``, ``doctor``, ``emulator`` and ``demo``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from vsbatch.cli.app import (
    LiveOpt,
    cli,
    cli_settings,
    command,
    err,
    out,
)
from vsbatch.emulator.cli import emulator_app

if TYPE_CHECKING:
    pass


@command
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Worker threads.")] = None,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this port.")
    ] = None,
    live: LiveOpt = False,
) -> None:
    """Run a Celery worker (threads pool) that applies queued rows."""
    from vsbatch.worker.runtime import deps_for

    settings = cli_settings(live=live, concurrency=concurrency, metrics_port=metrics_port)
    with deps_for(settings) as deps:
        from celery.signals import setup_logging

        from vsbatch.ops import logs, metrics
        from vsbatch.worker.celery_app import QUEUE, app
        from vsbatch.worker.sizing import worker_threads

        def _own_logging(**_: Any) -> None:  # connected: Celery leaves logging to us
            logs.setup_worker_logging(settings, others_level=loglevel)

        setup_logging.connect(_own_logging, weak=False)
        if settings.metrics_port is not None:
            metrics.serve(settings.metrics_port, settings.metrics_host)
        app.worker_main(
            [
                "worker",
                "--pool=threads",
                f"--concurrency={worker_threads(deps.settings)}",
                f"--queues={QUEUE}",
                "--without-mingle",
                "--without-gossip",
                f"--loglevel={loglevel}",
            ]
        )


@command
def doctor() -> None:
    """Check the key, the API base, Redis, the workers and the clocks: one line each."""
    from vsbatch.ops.doctor import run_doctor

    raise typer.Exit(run_doctor(cli_settings(need_key=False), out()))


# ``vsbatch emulator [OPTIONS]`` and ``vsbatch emulator sessions`` (vsbatch/emulator/cli.py).
cli.add_typer(emulator_app, name="emulator")


@command
def demo(
    concurrency: Annotated[int, typer.Option(help="Worker threads.")] = 8,
) -> None:
    """Run examples/ through the whole pipeline against a local emulator."""
    from vsbatch.cli.demo import run_demo

    code = run_demo(out(), err(), concurrency=concurrency)
    raise typer.Exit(code)

"""The ``vsbatch migrate list|plan|run`` commands and ``vsbatch beat`` (registered by ``cli``).

Kept apart from :mod:`vsbatch.cli.main` so that the migrations feature stays in one place; it
reuses the CLI's consoles, settings and error handling.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from vsbatch.cli.app import cli, cli_settings, command, err, guarded, out
from vsbatch.errors import MigrationSpecError, NotFoundError
from vsbatch.ops.terminal_text import safe

# Imported where used, as in ``cli``: registering these commands (``vsbatch --help``) must
# not import the migrations' parser, the ledger or the HTTP client.
if TYPE_CHECKING:
    from vsbatch.config import Settings
    from vsbatch.migrations.spec import Migration

F = TypeVar("F", bound=Callable[..., Any])

FileOpt = Annotated[
    Path | None,
    typer.Option(
        "--file",
        help="Migrations TOML file (default: VSBATCH_MIGRATIONS_FILE or migrations.toml).",
    ),
]

migrate = typer.Typer(
    name="migrate",
    help="Declarative metadata migrations (see docs/migrations.md).",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help, as ``cli``'s
)
cli.add_typer(migrate, name="migrate")


def subcommand(name: str) -> Callable[[F], F]:
    """Register a ``migrate`` subcommand (errors handled like every command's)."""

    def register(fn: F) -> F:
        migrate.command(name)(guarded(fn))
        return fn

    return register


def _load(settings: Settings, file: Path | None) -> tuple[Path, str, dict[str, Migration]]:
    from vsbatch.migrations.spec import parse_migrations

    path = file or settings.migrations_file
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MigrationSpecError(f"cannot read migrations file: {exc}", path=str(path)) from None
    migrations = parse_migrations(
        text, path=str(path), min_interval=settings.migration_min_interval
    )
    return path, text, migrations


def _one(migrations: dict[str, Migration], name: str, path: Path) -> Migration:
    try:
        return migrations[name]
    except KeyError:
        known = ", ".join(migrations) or "none"
        raise NotFoundError(f"no migration {name!r} in {path} (known: {known})") from None


@subcommand("list")
def list_command(file: FileOpt = None) -> None:
    """List the migrations of the file: schedule, selector and actions."""
    from rich.table import Table

    path, _, migrations = _load(cli_settings(need_key=False), file)
    table = Table("name", "schedule", "select", "actions", title=str(path))
    for m in migrations.values():
        sel = m.selector
        parts = [f"status={'|'.join(sel.statuses)}"]
        parts += [f"has {k}" for k in sel.metadata_present]
        parts += [f"no {k}" for k in sel.metadata_absent]
        parts += [f"{k}={v!r}" for k, v in sel.metadata_equals]
        if sel.created_after is not None:
            parts.append(f"created after {sel.created_after.describe()}")
        if sel.created_before is not None:
            parts.append(f"created before {sel.created_before.describe()}")
        if sel.account:
            parts.append(f"account={sel.account}")
        schedule = m.schedule.text if m.schedule else "manual"
        actions = "; ".join(a.describe() for a in m.actions)
        table.add_row(safe(m.name), safe(schedule), safe(", ".join(parts)), safe(actions))
    out().print(table)


@subcommand("plan")
def plan_command(
    name: Annotated[str, typer.Argument(help="The migration.")],
    file: FileOpt = None,
    show: Annotated[int, typer.Option(help="Changes to show.")] = 20,
    live: Annotated[bool, typer.Option("--live", help="Allow a live-mode Stripe key.")] = False,
) -> None:
    """Dry run: list the matching sessions and show what would change. Writes nothing."""
    from rich.table import Table

    from vsbatch.migrations.plan import plan_migration
    from vsbatch.stripe import preflight
    from vsbatch.stripe.client import StripeClient

    path, _, migrations = _load(cli_settings(need_key=False), file)
    migration = _one(migrations, name, path)
    settings = cli_settings(live=live)
    preflight.check(settings)
    with StripeClient.from_settings(settings) as client:
        result = plan_migration(client, migration, now=time.time(), shown=show)
    table = Table("session", "status", "changes", title=f"migration {name}")
    for change in result.changes:
        text = "; ".join(f"{c.field}: {c.before!r} -> {c.after!r}" for c in change.changes)
        table.add_row(safe(change.session_id), safe(change.status), safe(text))
    if result.changes:
        out().print(table)
    counts = result.counts
    out().print(f"listed {counts.listed}, matched {counts.matched}, would change {counts.changed}")


@subcommand("run")
def run_command(
    name: Annotated[str, typer.Argument(help="The migration.")],
    file: FileOpt = None,
    wait: Annotated[bool, typer.Option(help="Work and wait here (in-process workers).")] = False,
    live: Annotated[bool, typer.Option("--live", help="Allow a live-mode Stripe key.")] = False,
) -> None:
    """Run a migration now: enqueue the sessions that would change as a batch; print its id."""
    from vsbatch.migrations.run import run_migration
    from vsbatch.model.row import Outcome
    from vsbatch.ops.reports import summary_table
    from vsbatch.stripe import preflight
    from vsbatch.worker.runtime import deps_for, work_until_done
    from vsbatch.worker.tasks import enqueue_chunk

    path, _, migrations = _load(cli_settings(need_key=False), file)
    migration = _one(migrations, name, path)
    settings = cli_settings(live=live)
    with deps_for(settings) as deps:
        preflight.check(settings)
        batch = run_migration(deps, migration, enqueue_chunk)
        typer.echo(batch.id)
        err().print(f"batch {batch.id}: {batch.total} session(s) to change")
        if wait and batch.total:
            batch = work_until_done(deps, batch.id, err())  # Ctrl-C: one line, exit 130
            out().print(summary_table(batch))
            raise typer.Exit(1 if batch.counts.get(Outcome.FAILED, 0) else 0)


@command
def beat(
    file: FileOpt = None,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
) -> None:
    """Run Celery beat for the file's scheduled migrations (safe to start twice by mistake).

    Each tick runs once across the fleet: the worker that gets the tick claims it in Redis.
    """
    from vsbatch.migrations.run import beat_schedule
    from vsbatch.worker.runtime import deps_for

    settings = cli_settings(need_key=False)
    path, _, migrations = _load(settings, file)
    schedule = beat_schedule(migrations)
    if not schedule:
        err().print(f"no scheduled migrations in {safe(path)}")
        raise typer.Exit(2)
    with deps_for(settings):
        from celery.signals import setup_logging

        from vsbatch.ops import logs
        from vsbatch.worker.beat import MAX_TICK, SCHEDULER
        from vsbatch.worker.celery_app import app

        def _own_logging(**_: Any) -> None:  # connected: Celery leaves logging to us
            logs.setup_worker_logging(settings, others_level=loglevel)

        setup_logging.connect(_own_logging, weak=False)
        app.conf.beat_schedule = schedule
        app.conf.vsbatch_health_file = settings.health_file
        # The in-memory scheduler: nothing to share or corrupt between two beat processes;
        # ticks are computed from the wall clock and claimed in Redis.
        app.Beat(scheduler=SCHEDULER, max_interval=MAX_TICK, loglevel=loglevel, quiet=True).run()

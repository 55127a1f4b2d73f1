"""The results-store commands: ``vsbatch archive`` and ``vsbatch query totals|failures|session``,
and :func:`rows_of`, which gives ``report`` and ``failures`` a batch from Redis or, once it
has left Redis, from the results store.

SQLAlchemy, the ledger and Rich are imported inside the commands: registering them costs
``vsbatch --help`` nothing.
"""

from __future__ import annotations

import contextlib
import csv
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from vsbatch.cli.app import (
    RedactOpt,
    cli,
    cli_settings,
    command,
    err,
    guarded,
    interrupt_lines,
    out,
)
from vsbatch.errors import InputError, NotFoundError
from vsbatch.ops.terminal_text import safe
from vsbatch.signals import sigterm_as_interrupt

if TYPE_CHECKING:
    from vsbatch.config import Settings
    from vsbatch.model.row import BatchInfo
    from vsbatch.ops.reports import RowSource
    from vsbatch.results.archiver import Archived, Archiver
    from vsbatch.results.records import HistoryEntry
    from vsbatch.results.store import ArchivedBatch, ResultsStore
    from vsbatch.store.ledger import Ledger

F = TypeVar("F", bound=Callable[..., Any])
QueryFormatOpt = Annotated[str, typer.Option("--format", "-f", help="table, csv or json.")]
LimitOpt = Annotated[
    int, typer.Option("--limit", min=1, max=1_000_000, help="At most this many lines.")
]

query = typer.Typer(
    name="query",
    help="Questions to the results store (SQL): totals, failures by reason, a session's history.",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help, as ``cli``'s
)
cli.add_typer(query, name="query")
interrupt_lines["archive"] = "stopped: every batch archived so far is in the results store"


@contextlib.contextmanager
def rows_of(
    settings: Settings, ledger: Ledger, batch_id: str
) -> Iterator[tuple[RowSource, BatchInfo]]:
    """The batch and where its rows are: the ledger while it has the batch, else the
    results store.

    Raises:
        NotFoundError: Neither has the batch.
    """
    try:
        batch = ledger.get_batch(batch_id)
    except NotFoundError:
        with stored_batch(settings, batch_id) as found:
            yield found
        return
    yield ledger, batch


@contextlib.contextmanager
def stored_batch(settings: Settings, batch_id: str) -> Iterator[tuple[ResultsStore, BatchInfo]]:
    """A batch that has left Redis, from the results store (open for the block).

    Raises:
        NotFoundError: The store does not have it either (or there is no store yet).
    """
    from vsbatch.results.store import in_neither
    from vsbatch.results.url import missing_sqlite

    if missing_sqlite(settings.results_database_url):  # a read creates no store
        raise in_neither(batch_id)
    with _open(settings) as store:
        yield store, store.left_redis(batch_id)


def archive_ended(ledger: Ledger, settings: Settings, batch: BatchInfo) -> None:
    """Copy a batch that has ended to the results store (``run``, ``resume``, ``retry``), if
    ``VSBATCH_ARCHIVE`` is on. A store that fails is one warning line: the batch is done and
    stays in Redis, and workers or ``vsbatch archive`` copy it later."""
    from vsbatch.model.row import BatchState

    ended = batch.state in (BatchState.DONE, BatchState.CANCELED)
    if not settings.archive or not ended or batch.terminal < batch.total:
        return
    from vsbatch.results.archiver import archiver_for

    try:
        with _open(settings) as store:
            archiver_for(ledger, store, settings).archive_batch(batch.id)
    except Exception as exc:  # any failure of the store: the batch is done, its code stands
        from vsbatch.urls import safe_url

        line = safe_url(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__
        err().print(
            f"warning: batch {batch.id} not archived ({safe(line)}); it stays in Redis and"
            f" 'vsbatch archive {batch.id}' copies it later",
            highlight=False,
            soft_wrap=True,
        )


def _archived_line(archived: Archived) -> str:
    state = "complete" if archived.complete else "so far (the batch has not ended)"
    return f"batch {archived.batch_id}: {archived.rows} rows archived, {state}"


@command
def archive(
    batch_id: Annotated[
        str | None,
        typer.Argument(help="One batch (its finished rows so far); default: every ended batch."),
    ] = None,
    follow: Annotated[
        bool, typer.Option(help="Keep archiving batches as they end, until Ctrl-C.")
    ] = False,
    interval: Annotated[
        float,
        typer.Option(min=1.0, max=86400.0, help="Seconds between two passes of --follow."),
    ] = 30.0,
) -> None:
    """Copy finished rows from Redis to the results store (VSBATCH_RESULTS_URL; default
    SQLite in the data directory). Safe to repeat: each row is kept once."""
    from vsbatch.results.archiver import archiver_for
    from vsbatch.worker.runtime import ledger_for

    if batch_id is not None and follow:
        raise InputError("--follow archives every batch as it ends: give no BATCH with it")
    settings = cli_settings(need_key=False)
    stopping = sigterm_as_interrupt() if follow else contextlib.nullcontext()
    with stopping, _open(settings) as store, ledger_for(settings) as ledger:
        archiver = archiver_for(ledger, store, settings)
        if batch_id is not None:
            out().print(_archived_line(archiver.archive_batch(batch_id)), highlight=False)
            return
        if not follow:
            if not _archive_pass(archiver):
                err().print("nothing to archive: every ended batch is in the results store")
            return
        err().print(
            f"following: archiving batches as they end, a pass every {interval:g} s;"
            " Ctrl-C or SIGTERM stops",
            highlight=False,
            soft_wrap=True,
        )
        while True:
            try:
                _archive_pass(archiver)
            except Exception as exc:  # a database or Redis away for a while: keep following
                err().print(
                    f"archive pass failed ({safe(str(exc).splitlines()[0])}); next"
                    f" pass in {interval:g} s",
                    highlight=False,
                    soft_wrap=True,
                )
            time.sleep(interval)


def _archive_pass(archiver: Archiver) -> list[Archived]:
    return archiver.archive_finished(
        on_batch=lambda a: out().print(_archived_line(a), highlight=False)
    )


def _emit(rows: Sequence[dict[str, Any]], columns: list[str], fmt: str, title: str) -> None:
    """Print ``rows`` as a table, CSV or JSON (every text through ``safe`` in a table; data
    such as an update as JSON text in a table or CSV cell)."""
    if fmt == "json":
        typer.echo(json.dumps(list(rows), ensure_ascii=False, indent=2))
        return
    flat = [{c: _cell(row[c]) for c in columns} for row in rows]
    if fmt == "csv":
        from vsbatch.intake.csv_format import neutralise

        # As report's and failures' CSV: a cell a spreadsheet would run gets a leading '.
        writer = csv.DictWriter(sys.stdout, fieldnames=columns)
        writer.writeheader()
        writer.writerows({c: neutralise(cell) for c, cell in row.items()} for row in flat)
    else:
        from rich.table import Table

        table = Table(title=title)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in flat:
            table.add_row(*(safe(row[c]) for c in columns))
        out().print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _when(seconds: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC (what the SQL columns hold), None for no time."""
    if not seconds:
        return None
    import datetime

    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.isoformat(timespec="seconds")


def _batch_line(batch: ArchivedBatch, totals: dict[str, int]) -> dict[str, Any]:
    info = batch.info
    head = {"batch_id": info.id, "name": info.name, "created_at": _when(info.created_at)}
    more = {"state": info.state.value, "total": info.total, "archived": batch.archived_rows}
    return {**head, **more, **totals}


def _history_line(entry: HistoryEntry, *, pii: bool) -> dict[str, Any]:
    from vsbatch.ops.reasons import reason
    from vsbatch.ops.redaction import redact_record

    # As report reads through RedactedRows: keys always, emails and phones when asked.
    record = redact_record(entry.record, pii=pii)
    return {
        "batch_id": record.batch_id,
        "batch_name": entry.batch_name,
        "row": record.row,
        "outcome": record.outcome.value,
        "reason": reason(record),
        "request_id": record.request_id,
        "updated_at": _when(record.updated_at),
        "update": record.params,
    }


def _check(fmt: str) -> None:
    if fmt not in ("table", "csv", "json"):
        raise InputError(f"unknown format {fmt!r}: use table, csv or json")


@contextlib.contextmanager
def _open(settings: Settings) -> Iterator[ResultsStore]:
    """The results store; a database that fails while in use is one line (exit 2) saying
    what, where and how to fix it."""
    from sqlalchemy.exc import SQLAlchemyError

    from vsbatch.results.engine import store_failure
    from vsbatch.results.store import ResultsStore

    url = settings.results_database_url
    with ResultsStore.open(url) as store:
        try:
            yield store
        except SQLAlchemyError as exc:
            raise store_failure(url, exc) from None


@contextlib.contextmanager
def _reading(settings: Settings) -> Iterator[ResultsStore]:
    """The store for a query; with no SQLite file yet, one line (nothing to do: exit 0) and
    no file or directory created."""
    from vsbatch.results.url import missing_sqlite

    path = missing_sqlite(settings.results_database_url)
    if path is not None:
        err().print(
            f"no results store yet at {safe(str(path))}: run vsbatch archive",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(0)
    with _open(settings) as store:
        yield store


def _subcommand(name: str) -> Callable[[F], F]:
    """Register a ``query`` subcommand (errors handled like every command's)."""

    def register(fn: F) -> F:
        query.command(name)(guarded(fn))
        return fn

    return register


@_subcommand("totals")
def totals(
    batch_id: Annotated[str | None, typer.Argument(help="One batch; default: the latest.")] = None,
    fmt: QueryFormatOpt = "table",
    limit: LimitOpt = 50,
) -> None:
    """Rows per outcome: of one batch, or of each of the latest archived batches."""
    from vsbatch.ops.reports import OUTCOME_ORDER

    _check(fmt)
    with _reading(cli_settings(need_key=False)) as store:
        if batch_id is not None:
            found = store.batch_totals(batch_id)
            rows = [{"outcome": o, "rows": n} for o, n in found.items()]
            _emit(rows, ["outcome", "rows"], fmt, f"batch {batch_id}")
            return
        lines = [_batch_line(b, store.batch_totals(b.info.id)) for b in store.list_batches(limit)]
    if not lines:
        err().print("no archived batch yet: 'vsbatch archive' copies ended batches from Redis")
        return
    terminal = [o.value for o in OUTCOME_ORDER[:4]]
    columns = ["batch_id", "name", "created_at", "state", "total", "archived", *terminal]
    _emit(lines, columns, fmt, "archived batches")


@_subcommand("failures")
def failures_by_reason(
    batch_id: Annotated[str | None, typer.Argument(help="One batch; default: every one.")] = None,
    fmt: QueryFormatOpt = "table",
    limit: LimitOpt = 100,
) -> None:
    """Rows not applied (failed, rejected, skipped) by batch, outcome and reason."""
    _check(fmt)
    with _reading(cli_settings(need_key=False)) as store:
        if batch_id is not None:
            store.archived_batch(batch_id)  # an unknown batch is an error, not an empty list
        found = store.failures_by_reason(batch_id)[:limit]
    rows = [
        {"batch_id": r.batch_id, "outcome": r.outcome, "reason": r.reason, "rows": r.rows}
        for r in found
    ]
    _emit(rows, ["batch_id", "outcome", "reason", "rows"], fmt, "rows not applied, by reason")


@_subcommand("session")
def session(
    session_id: Annotated[str, typer.Argument(help="A VerificationSession id (vs_...).")],
    fmt: QueryFormatOpt = "table",
    limit: LimitOpt = 500,
    redact: RedactOpt = None,
) -> None:
    """Every archived update of one session, across batches, oldest first."""
    _check(fmt)
    settings = cli_settings(need_key=False)
    with _reading(settings) as store:
        history = store.session_history(session_id, limit=limit)
    if not history:
        raise NotFoundError(f"no archived update of session {session_id}")
    pii = settings.redact_pii if redact is None else redact
    rows = [_history_line(entry, pii=pii) for entry in history]
    columns = [
        "batch_id",
        "batch_name",
        "row",
        "outcome",
        "reason",
        "request_id",
        "updated_at",
        "update",
    ]
    _emit(rows, columns, fmt, f"session {session_id}")


COMMANDS = (archive, totals, failures_by_reason, session)

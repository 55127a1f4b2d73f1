"""The batch commands: ``run``, ``submit``, ``resume``, ``retry``, ``cancel``, ``status``,
``report``, ``failures``, ``verify`` and ``plan``. Each imports what it uses when it runs
(Rich's console and tables too: ``vsbatch --help`` imports neither)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vsbatch.cli.app import (
    FormatOpt,
    LiveOpt,
    NewOpt,
    RedactOpt,
    cli_settings,
    command,
    err,
    interrupt_lines,
    out,
)
from vsbatch.errors import InputError
from vsbatch.ops.terminal_text import safe

if TYPE_CHECKING:
    from vsbatch.config import Settings
    from vsbatch.model.row import BatchInfo
    from vsbatch.ops.reports import RowSource
    from vsbatch.store.ledger import Ledger
    from vsbatch.worker.row_options import RowOptions


def _exit_for(batch: BatchInfo) -> int:
    from vsbatch.ops.next_steps import exit_code

    return exit_code(batch)


def _row_options(read_first: bool) -> RowOptions:
    from vsbatch.worker.row_options import RowOptions

    return RowOptions(read_first=read_first)


@command
def run(
    file: Annotated[Path, typer.Argument(help="CSV of sessions and the changes wanted.")],
    name: Annotated[str | None, typer.Option(help="A name for the batch.")] = None,
    strict: Annotated[bool, typer.Option(help="Refuse the file if any row is invalid.")] = False,
    account: Annotated[str | None, typer.Option(help="Default Stripe-Account.")] = None,
    read_first: Annotated[
        bool, typer.Option(help="Read each session first; skip unchanged / not updatable.")
    ] = False,
    concurrency: Annotated[int | None, typer.Option(help="Worker threads.")] = None,
    new: NewOpt = False,
    live: LiveOpt = False,
    report_format: FormatOpt = "table",
) -> None:
    """Submit FILE, work it with in-process workers, wait, and print the report.

    If an earlier run of the same file did not finish, its batch is resumed instead.
    """
    from vsbatch.intake.stage import SubmitOptions, join_or_submit, read_digest
    from vsbatch.model.update_rules import check_account
    from vsbatch.stripe import preflight
    from vsbatch.worker.runtime import deps_for, work_until_done
    from vsbatch.worker.tasks import enqueue_chunk

    def waiting(batch_id: str) -> None:
        err().print(
            f"batch {batch_id} from the same file is being submitted: waiting for it to open"
            f" (if its submit was killed, 'vsbatch cancel {batch_id}' ends the wait)"
        )

    check_account(account, "--account")
    settings = cli_settings(live=live, concurrency=concurrency)
    with deps_for(settings) as deps:
        digest = read_digest(file)
        latency = preflight.check(settings)
        options = SubmitOptions(name, strict, account, _row_options(read_first), new=new)
        batch, rows = join_or_submit(
            deps, file, enqueue_chunk, options, digest=digest, on_wait=waiting
        )
        if rows is not None:
            err().print(
                f"resuming batch {batch.id} from the same file: {rows} of {batch.total} rows"
                " left (--new submits the file again as a new batch)"
            )
        else:
            err().print(f"batch {batch.id}: {batch.total} rows")
        batch = work_until_done(deps, batch.id, err(), latency=latency)
        _finish(deps.ledger, deps.settings, batch, report_format)


def _finish(ledger: Ledger, settings: Settings, batch: BatchInfo, fmt: str) -> None:
    """Print the report, then the commands that make sense now; exit by the outcome."""
    from vsbatch.cli.results import archive_ended
    from vsbatch.ops.next_steps import print_next_steps

    archive_ended(ledger, settings, batch)
    _print_report(ledger, settings, batch, fmt)
    # On stderr: stdout holds the report alone (``--format json`` stays parseable).
    print_next_steps(err(), ledger, batch)
    raise typer.Exit(_exit_for(batch))


@command
def submit(
    file: Annotated[Path, typer.Argument(help="CSV of sessions and the changes wanted.")],
    name: Annotated[str | None, typer.Option(help="A name for the batch.")] = None,
    strict: Annotated[bool, typer.Option(help="Refuse the file if any row is invalid.")] = False,
    account: Annotated[str | None, typer.Option(help="Default Stripe-Account.")] = None,
    read_first: Annotated[bool, typer.Option(help="Read each session first.")] = False,
    new: NewOpt = False,
    live: LiveOpt = False,
) -> None:
    """Submit FILE for workers elsewhere; print the batch id alone on stdout."""
    from vsbatch.intake.stage import SubmitOptions, open_csv_batch, read_digest, submit_csv
    from vsbatch.model.row import Outcome
    from vsbatch.model.update_rules import check_account
    from vsbatch.stripe import preflight
    from vsbatch.worker.runtime import deps_for
    from vsbatch.worker.tasks import enqueue_chunk

    check_account(account, "--account")

    def enqueue(batch_id: str, rows: list[int], options: RowOptions) -> None:
        # The batch is open from the first chunk on: Ctrl-C leaves a batch to resume.
        interrupt_lines["submit"] = (
            f"interrupted: batch {batch_id} is open; 'vsbatch resume {batch_id}' enqueues its"
            " rows again"
        )
        enqueue_chunk(batch_id, rows, options)

    interrupt_lines["submit"] = "interrupted: nothing was submitted"
    settings = cli_settings(live=live)
    with deps_for(settings) as deps:
        digest = read_digest(file)
        preflight.check(settings)
        unfinished = None if new else open_csv_batch(deps, digest, account)
        if unfinished is not None:
            raise InputError(
                f"batch {unfinished.id} from this file is still open ({unfinished.terminal} of"
                f" {unfinished.total} rows final): 'vsbatch resume {unfinished.id}' enqueues its"
                " unfinished rows again; --new submits the file as a new batch, whose new"
                " idempotency keys apply rows already applied a second time"
            )
        batch = submit_csv(
            deps,
            file,
            enqueue,
            SubmitOptions(name, strict, account, _row_options(read_first), new=new),
            digest=digest,
        )
    typer.echo(batch.id)
    rejected = batch.counts.get(Outcome.REJECTED, 0)
    if rejected:
        err().print(
            f"{rejected} row(s) rejected: 'vsbatch failures {batch.id}' lists them with the reason",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)


@command
def status(
    batch_id: Annotated[
        str | None, typer.Argument(help="A batch id; all batches if omitted.")
    ] = None,
    watch: Annotated[
        bool,
        typer.Option(
            help="A live view (of the open batches, or of BATCH until it is done); one line"
            " per batch and second when not a terminal. Ctrl-C stops it."
        ),
    ] = False,
) -> None:
    """Show a batch's counters, or the most recent batches."""
    from vsbatch.cli.status_view import show_status, watch_status
    from vsbatch.ops import reports

    settings = cli_settings(need_key=False)
    batch = watch_status(settings, batch_id) if watch else show_status(settings, batch_id)
    if batch is None:
        return
    out().print(reports.summary_table(batch))
    raise typer.Exit(_exit_for(batch))


@command
def report(
    batch_id: Annotated[str, typer.Argument(help="The batch.")],
    report_format: FormatOpt = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here.")] = None,
    redact: RedactOpt = None,
) -> None:
    """The reconciliation report: every row's outcome and why."""
    from vsbatch.cli.results import rows_of
    from vsbatch.worker.runtime import ledger_for

    settings = cli_settings(need_key=False)
    with ledger_for(settings) as ledger, rows_of(settings, ledger, batch_id) as (rows, batch):
        _print_report(rows, settings, batch, report_format, output, pii=redact)
    raise typer.Exit(_exit_for(batch))


def _print_report(
    ledger: RowSource,
    settings: Settings,
    batch: BatchInfo,
    fmt: str,
    output: Path | None = None,
    pii: bool | None = None,
) -> None:
    from rich.console import Console

    from vsbatch.cli.outputs import output_stream
    from vsbatch.intake.csv_writers import write_report_csv
    from vsbatch.ops import reports
    from vsbatch.ops.redacted_ledger import RedactedRows

    if fmt not in ("table", "json", "csv", "html"):
        raise InputError(f"unknown format {fmt!r}: use table, json, csv or html")
    # Every report reads rows through the redacting view: keys always, PII when asked.
    redacted = RedactedRows(ledger, pii=settings.redact_pii if pii is None else pii)
    if fmt == "table" and output is None:
        reports.print_table(out(), redacted, batch)
        return
    with output_stream(output) as stream:
        if fmt == "json":
            reports.write_json(redacted, batch, stream)
        elif fmt == "csv":
            write_report_csv(redacted.iter_rows(batch.id), stream)
        elif fmt == "html":
            from vsbatch.ops.html_report import render_html

            stream.write(render_html(redacted, batch))
        else:
            Console(file=stream, emoji=False).print(reports.summary_table(batch))


@command
def failures(
    batch_id: Annotated[str, typer.Argument(help="The batch.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here.")] = None,
    redact: RedactOpt = None,
) -> None:
    """Failed and rejected rows as a CSV in the input format (re-submittable as it is).

    With redaction the email and phone cells hold markers: share that file, do not resubmit it.
    """
    from vsbatch.cli.outputs import output_stream
    from vsbatch.cli.results import rows_of
    from vsbatch.intake.csv_writers import write_failures
    from vsbatch.model.row import Outcome
    from vsbatch.ops.redacted_ledger import RedactedRows
    from vsbatch.worker.runtime import ledger_for

    settings = cli_settings(need_key=False)
    with ledger_for(settings) as plain, rows_of(settings, plain, batch_id) as (found, _):
        pii = settings.redact_pii if redact is None else redact
        ledger = RedactedRows(found, pii=pii)
        with output_stream(output) as stream:
            rows = ledger.iter_rows(batch_id, [Outcome.FAILED, Outcome.REJECTED])
            count = write_failures(rows, stream)
        err().print(f"{count} row(s)")


@command
def retry(
    batch_id: Annotated[str, typer.Argument(help="The batch whose retryable failures to retry.")],
    wait: Annotated[bool, typer.Option(help="Work and wait here (in-process workers).")] = True,
    live: LiveOpt = False,
) -> None:
    """Re-submit a batch's retryable failures as a child batch (reading each session first).

    Prints the child batch's id alone on stdout; with no retryable failure it creates nothing,
    says so on stderr and exits 0.
    """
    from vsbatch.ops.next_steps import nothing_to_retry
    from vsbatch.ops.reconcile import retry_batch
    from vsbatch.stripe import preflight
    from vsbatch.worker.runtime import deps_for, work_until_done
    from vsbatch.worker.tasks import enqueue_chunk

    with deps_for(cli_settings(live=live)) as deps:
        preflight.check(deps.settings)
        child = retry_batch(deps, batch_id, enqueue_chunk)
        if child is None:
            err().print(safe(nothing_to_retry(deps.ledger.get_batch(batch_id))), highlight=False)
            return
        typer.echo(child.id)
        if wait:
            child = work_until_done(deps, child.id, err())
            _finish(deps.ledger, deps.settings, child, "table")


@command
def resume(
    batch_id: Annotated[str, typer.Argument(help="The open batch to resume.")],
    wait: Annotated[bool, typer.Option(help="Work and wait here (in-process workers).")] = True,
    live: LiveOpt = False,
    report_format: FormatOpt = "table",
) -> None:
    """Enqueue a batch's unfinished rows again (after a crash or an interrupted run)."""
    from vsbatch.intake.stage import resume as resume_enqueue
    from vsbatch.stripe import preflight
    from vsbatch.worker.runtime import deps_for, work_until_done
    from vsbatch.worker.tasks import enqueue_chunk

    with deps_for(cli_settings(live=live)) as deps:
        preflight.check(deps.settings)
        batch, rows = resume_enqueue(deps, batch_id, enqueue_chunk)
        err().print(f"batch {batch.id}: {rows} of {batch.total} rows enqueued again")
        if wait:
            batch = work_until_done(deps, batch.id, err())
            _finish(deps.ledger, deps.settings, batch, report_format)


@command
def cancel(batch_id: Annotated[str, typer.Argument(help="The batch to cancel.")]) -> None:
    """Cancel a batch: rows never sent end skipped (batch_canceled) at once; rows already sent
    (or being sent) end in their real outcome."""
    from vsbatch.ops.cancellation import cancel_batch
    from vsbatch.worker.runtime import ledger_for

    with ledger_for(cli_settings(need_key=False)) as ledger:
        _, line = cancel_batch(ledger, batch_id)
        out().print(safe(line), highlight=False)


@command
def verify(
    batch_id: Annotated[str, typer.Argument(help="The batch to check.")],
    live: LiveOpt = False,
) -> None:
    """Read back every succeeded session and report drift from the applied update."""
    from vsbatch.ops.reconcile import verify_batch
    from vsbatch.stripe import preflight
    from vsbatch.worker.runtime import deps_for

    with deps_for(cli_settings(live=live)) as deps:
        preflight.check(deps.settings)
        drifted = verify_batch(deps, batch_id, out())
        raise typer.Exit(1 if drifted else 0)


@command
def plan(
    file: Annotated[Path, typer.Argument(help="CSV of sessions and the changes wanted.")],
    account: Annotated[str | None, typer.Option(help="Default Stripe-Account.")] = None,
    live: LiveOpt = False,
) -> None:
    """Dry run: read each session and show what would change. Writes nothing."""
    from vsbatch.model.update_rules import check_account
    from vsbatch.ops.reconcile import plan_file
    from vsbatch.stripe import preflight

    check_account(account, "--account")
    settings = cli_settings(live=live)
    preflight.check(settings)
    counts = plan_file(settings, file, out(), account=account)
    raise typer.Exit(2 if counts.get("invalid") else 0)

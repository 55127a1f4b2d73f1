"""The ``vsbatch`` command line (typer + rich). The only place errors become exit codes.

Exit codes: 0 every row applied or skipped; 1 some rows failed (or drifted, for ``verify``);
2 usage or input errors (a refused file, rejected rows, a bad setting); 141 the reader of stdout
left early (``| head``); 130 Ctrl-C. ``report``/``status`` of a batch use the same table.

Startup: this module imports typer, rich and the error tree only; each command imports what
it uses when it runs, so ``vsbatch --help`` starts without Celery, httpx, Redis or pydantic,
and the ledger-only commands (``status``, ``report``, ``failures``, ``cancel``) without
Celery or httpx (tests/e2e/test_startup.py).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from vsbatch.errors import ConfigError, InputError, VsbatchError
from vsbatch.outputs import PipeConsole
from vsbatch.terminal_text import safe

if TYPE_CHECKING:
    from vsbatch.config import Settings
    from vsbatch.ledger import BatchInfo, Ledger
    from vsbatch.processing import RowOptions

cli = typer.Typer(
    name="vsbatch",
    help="Apply Stripe Identity VerificationSession updates to many sessions, safely.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain (click) help and usage errors: typer's Rich panels import rich.markdown, pygments
    # and rich.traceback, which double the time ``vsbatch --help`` takes to start.
    rich_markup_mode=None,
)
# Emoji codes off: ":x:" in a batch name or a message is text (markup is escaped by ``safe``).
out = PipeConsole(emoji=False)  # `| head` ends the command with 141, quietly
err = Console(stderr=True, emoji=False)

F = TypeVar("F", bound=Callable[..., Any])
# Lines written to a pipe or a file (a log) are never wrapped or cut: ids stay whole.
PIPE_WIDTH = 4096

LiveOpt = Annotated[bool, typer.Option("--live", help="Allow a live-mode Stripe key.")]
NewOpt = Annotated[
    bool, typer.Option("--new", help="Submit as a new batch even if one from FILE is open.")
]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table, json, csv or html.")]
RedactOpt = Annotated[
    bool | None,
    typer.Option(
        "--redact/--no-redact",
        help="Hide emails and phone numbers (default: VSBATCH_REDACT_PII).",
        show_default=False,
    ),
]
# Error lines hide PII once settings asked for it (API keys are always hidden).
_redact_errors = {"pii": False}


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"vsbatch {version('vsbatch')}")
        raise typer.Exit()


@cli.callback()
def _main(
    _: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Apply Stripe Identity VerificationSession updates to many sessions, safely."""
    for console in (out, err):
        if not console.is_terminal:
            console.width = PIPE_WIDTH


RESUMABLE = (
    "interrupted: nothing is lost; 'vsbatch resume BATCH', or 'vsbatch run' of the same file,"
    " finishes the batch"
)
# What is true when Ctrl-C stops each command (``submit`` updates its line once a batch opens).
_interrupted = {
    "plan": "interrupted: nothing was written",
    "submit": "interrupted: nothing was submitted",
    "status": "stopped watching",
    "report": "interrupted: nothing was written",
    "failures": "interrupted: nothing was written",
    "doctor": "interrupted",
    "verify": "interrupted: nothing was changed",
}


def guarded(fn: F) -> F:
    """``fn`` with its VsbatchErrors printed as one (redacted) line and their exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VsbatchError as exc:
            _print_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except BrokenPipeError:
            _reader_left()
        except KeyboardInterrupt as exc:
            if _raised_from(exc, "vsbatch.runtime", "Interrupted"):
                # Already said how to resume; worker threads may still be in flight: do not wait.
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(130)
            err.print(_interrupted.get(fn.__name__, RESUMABLE), highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None
        except Exception as exc:
            # e.g. MISCONF: Redis's disk is full (from redis-py, or kombu's wrapping of it)
            if not (
                _raised_from(exc, "redis.exceptions", "RedisError")
                or _raised_from(exc, "kombu.exceptions", "OperationalError")
            ):
                raise
            from vsbatch.bootstrap import redis_refusal

            refusal = redis_refusal(exc)
            _print_error(refusal)
            raise typer.Exit(refusal.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _reader_left() -> NoReturn:
    """The reader of stdout went away (``| head``): end quietly with 141, as SIGPIPE would."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        # The final flush of what is still buffered must not fail a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    raise typer.Exit(141)


def _raised_from(exc: BaseException, module: str, name: str) -> bool:
    """Whether ``exc`` is a ``module.name``, without importing ``module`` to find out.

    A module that was never imported raised nothing: the check imports neither redis nor
    kombu into a command that did not use them.
    """
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(exc, getattr(loaded, name))


def _print_error(exc: VsbatchError) -> None:
    from vsbatch.redaction import redact_text

    message = redact_text(str(exc), pii=_redact_errors["pii"])
    err.print(f"[red]error:[/red] {safe(message)}", highlight=False, soft_wrap=True)


def command(fn: F) -> F:
    """Register a top-level command (errors handled by :func:`guarded`)."""
    cli.command()(guarded(fn))
    return fn


def _settings(*, live: bool = False, need_key: bool = True, **overrides: Any) -> Settings:
    from vsbatch import logs
    from vsbatch.config import load_settings

    settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    _redact_errors["pii"] = settings.redact_pii
    # Interactive commands show warnings and errors; row-by-row lines are the workers'.
    logs.setup_logging(settings, level="WARNING")
    if need_key:
        if settings.is_live_key and not (live or settings.live):
            raise ConfigError("this is a live-mode key: add --live to update real sessions")
        settings.require_api_key()
    return settings


def _exit_for(batch: BatchInfo) -> int:
    from vsbatch.next_steps import exit_code

    return exit_code(batch)


def _row_options(read_first: bool) -> RowOptions:
    from vsbatch.processing import RowOptions

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
    from vsbatch import preflight
    from vsbatch.runtime import deps_for, work_until_done
    from vsbatch.submit import SubmitOptions, join_or_submit, read_digest
    from vsbatch.tasks import enqueue_chunk
    from vsbatch.updates import check_account

    def waiting(batch_id: str) -> None:
        err.print(
            f"batch {batch_id} from the same file is being submitted: waiting for it to open"
            f" (if its submit was killed, 'vsbatch cancel {batch_id}' ends the wait)"
        )

    check_account(account, "--account")
    settings = _settings(live=live, concurrency=concurrency)
    with deps_for(settings) as deps:
        digest = read_digest(file)
        latency = preflight.check(settings)
        options = SubmitOptions(name, strict, account, _row_options(read_first), new=new)
        batch, rows = join_or_submit(
            deps, file, enqueue_chunk, options, digest=digest, on_wait=waiting
        )
        if rows is not None:
            err.print(
                f"resuming batch {batch.id} from the same file: {rows} of {batch.total} rows"
                " left (--new submits the file again as a new batch)"
            )
        else:
            err.print(f"batch {batch.id}: {batch.total} rows")
        batch = work_until_done(deps, batch.id, err, latency=latency)
        _finish(deps.ledger, deps.settings, batch, report_format)


def _finish(ledger: Ledger, settings: Settings, batch: BatchInfo, fmt: str) -> None:
    """Print the report, then the commands that make sense now; exit by the outcome."""
    from vsbatch.next_steps import print_next_steps

    _print_report(ledger, settings, batch, fmt)
    # On stderr: stdout holds the report alone (``--format json`` stays parseable).
    print_next_steps(err, ledger, batch)
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
    from vsbatch import preflight
    from vsbatch.ledger import Outcome
    from vsbatch.runtime import deps_for
    from vsbatch.submit import SubmitOptions, open_csv_batch, read_digest, submit_csv
    from vsbatch.tasks import enqueue_chunk
    from vsbatch.updates import check_account

    check_account(account, "--account")

    def enqueue(batch_id: str, rows: list[int], options: RowOptions) -> None:
        # The batch is open from the first chunk on: Ctrl-C leaves a batch to resume.
        _interrupted["submit"] = (
            f"interrupted: batch {batch_id} is open; 'vsbatch resume {batch_id}' enqueues its"
            " rows again"
        )
        enqueue_chunk(batch_id, rows, options)

    _interrupted["submit"] = "interrupted: nothing was submitted"
    settings = _settings(live=live)
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
        err.print(
            f"{rejected} row(s) rejected: 'vsbatch failures {batch.id}' lists them with the reason",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)


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
    from vsbatch.runtime import deps_for

    settings = _settings(live=live, concurrency=concurrency, metrics_port=metrics_port)
    with deps_for(settings) as deps:
        from celery.signals import setup_logging

        from vsbatch import logs, metrics
        from vsbatch.sizing import worker_threads
        from vsbatch.worker import QUEUE, app

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
def status(
    batch_id: Annotated[
        str | None, typer.Argument(help="A batch id; all batches if omitted.")
    ] = None,
    watch: Annotated[bool, typer.Option(help="Follow until the batch is done.")] = False,
) -> None:
    """Show a batch's counters, or the most recent batches."""
    from vsbatch import reports
    from vsbatch.idle import no_worker_hint
    from vsbatch.runtime import ledger_for

    with ledger_for(_settings(need_key=False)) as ledger:
        if batch_id is None:
            batches = ledger.list_batches()
            for batch in batches:
                counts = ", ".join(f"{k} {v}" for k, v in reports.counts_dict(batch).items() if v)
                out.print(f"{safe(batch.id)}  {batch.state.value:9} {safe(batch.name)}  ({counts})")
            _hint(no_worker_hint(ledger, batches))
            return
        batch = ledger.get_batch(batch_id)
        _hint(no_worker_hint(ledger, [batch]))
        if watch:
            from vsbatch.progress import wait_for_batch

            batch = wait_for_batch(ledger, batch_id, err)
        out.print(reports.summary_table(batch))
    raise typer.Exit(_exit_for(batch))


def _hint(line: str | None) -> None:
    if line:
        err.print(f"[yellow]hint:[/yellow] {safe(line)}", highlight=False, soft_wrap=True)


@command
def report(
    batch_id: Annotated[str, typer.Argument(help="The batch.")],
    report_format: FormatOpt = "table",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here.")] = None,
    redact: RedactOpt = None,
) -> None:
    """The reconciliation report: every row's outcome and why."""
    from vsbatch.runtime import ledger_for

    settings = _settings(need_key=False)
    with ledger_for(settings) as ledger:
        batch = ledger.get_batch(batch_id)
        _print_report(ledger, settings, batch, report_format, output, pii=redact)
    raise typer.Exit(_exit_for(batch))


def _print_report(
    ledger: Ledger,
    settings: Settings,
    batch: BatchInfo,
    fmt: str,
    output: Path | None = None,
    pii: bool | None = None,
) -> None:
    from vsbatch import reports
    from vsbatch.csv_io import write_report_csv
    from vsbatch.outputs import output_stream
    from vsbatch.redaction import RedactedLedger

    if fmt not in ("table", "json", "csv", "html"):
        raise InputError(f"unknown format {fmt!r}: use table, json, csv or html")
    # Every report reads rows through the redacting view: keys always, PII when asked.
    redacted = RedactedLedger(ledger, pii=settings.redact_pii if pii is None else pii)
    if fmt == "table" and output is None:
        reports.print_table(out, redacted, batch)
        return
    with output_stream(output) as stream:
        if fmt == "json":
            reports.write_json(redacted, batch, stream)
        elif fmt == "csv":
            write_report_csv(redacted.iter_rows(batch.id), stream)
        elif fmt == "html":
            from vsbatch.html_report import render_html

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
    from vsbatch.csv_io import write_failures
    from vsbatch.ledger import Outcome
    from vsbatch.outputs import output_stream
    from vsbatch.redaction import RedactedLedger
    from vsbatch.runtime import ledger_for

    settings = _settings(need_key=False)
    with ledger_for(settings) as plain:
        plain.get_batch(batch_id)
        pii = settings.redact_pii if redact is None else redact
        ledger = RedactedLedger(plain, pii=pii)
        with output_stream(output) as stream:
            rows = ledger.iter_rows(batch_id, [Outcome.FAILED, Outcome.REJECTED])
            count = write_failures(rows, stream)
        err.print(f"{count} row(s)")


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
    from vsbatch import preflight
    from vsbatch.next_steps import nothing_to_retry
    from vsbatch.reconcile import retry_batch
    from vsbatch.runtime import deps_for, work_until_done
    from vsbatch.tasks import enqueue_chunk

    with deps_for(_settings(live=live)) as deps:
        preflight.check(deps.settings)
        child = retry_batch(deps, batch_id, enqueue_chunk)
        if child is None:
            err.print(safe(nothing_to_retry(deps.ledger.get_batch(batch_id))), highlight=False)
            return
        typer.echo(child.id)
        if wait:
            child = work_until_done(deps, child.id, err)
            _finish(deps.ledger, deps.settings, child, "table")


@command
def resume(
    batch_id: Annotated[str, typer.Argument(help="The open batch to resume.")],
    wait: Annotated[bool, typer.Option(help="Work and wait here (in-process workers).")] = True,
    live: LiveOpt = False,
    report_format: FormatOpt = "table",
) -> None:
    """Enqueue a batch's unfinished rows again (after a crash or an interrupted run)."""
    from vsbatch import preflight
    from vsbatch.runtime import deps_for, work_until_done
    from vsbatch.submit import resume as resume_enqueue
    from vsbatch.tasks import enqueue_chunk

    with deps_for(_settings(live=live)) as deps:
        preflight.check(deps.settings)
        batch, rows = resume_enqueue(deps, batch_id, enqueue_chunk)
        err.print(f"batch {batch.id}: {rows} of {batch.total} rows enqueued again")
        if wait:
            batch = work_until_done(deps, batch.id, err)
            _finish(deps.ledger, deps.settings, batch, report_format)


@command
def cancel(batch_id: Annotated[str, typer.Argument(help="The batch to cancel.")]) -> None:
    """Cancel a batch: rows never sent end skipped (batch_canceled) at once; rows already sent
    (or being sent) end in their real outcome."""
    from vsbatch.ledger import BatchState, Outcome
    from vsbatch.runtime import ledger_for

    with ledger_for(_settings(need_key=False)) as ledger:
        before = ledger.get_batch(batch_id).counts[Outcome.SKIPPED]
        batch = ledger.cancel(batch_id)
        if batch.state is not BatchState.CANCELED:
            out.print(f"batch {batch.id} is {batch.state.value}: nothing to cancel")
            return
        skipped = batch.counts[Outcome.SKIPPED] - before
        line = f"batch {batch.id} canceled: {skipped} rows never sent end skipped (batch_canceled)"
        in_flight = batch.total - batch.terminal
        if in_flight:
            line += f"; {in_flight} rows already sent or being sent end in their real outcome"
        out.print(line)


@command
def verify(
    batch_id: Annotated[str, typer.Argument(help="The batch to check.")],
    live: LiveOpt = False,
) -> None:
    """Read back every succeeded session and report drift from the applied update."""
    from vsbatch import preflight
    from vsbatch.reconcile import verify_batch
    from vsbatch.runtime import deps_for

    with deps_for(_settings(live=live)) as deps:
        preflight.check(deps.settings)
        drifted = verify_batch(deps, batch_id, out)
        raise typer.Exit(1 if drifted else 0)


@command
def plan(
    file: Annotated[Path, typer.Argument(help="CSV of sessions and the changes wanted.")],
    account: Annotated[str | None, typer.Option(help="Default Stripe-Account.")] = None,
    live: LiveOpt = False,
) -> None:
    """Dry run: read each session and show what would change. Writes nothing."""
    from vsbatch import preflight
    from vsbatch.reconcile import plan_file
    from vsbatch.updates import check_account

    check_account(account, "--account")
    settings = _settings(live=live)
    preflight.check(settings)
    counts = plan_file(settings, file, out, account=account)
    raise typer.Exit(2 if counts.get("invalid") else 0)


@command
def doctor() -> None:
    """Check the key, the API base, Redis, the workers and the clocks: one line each."""
    from vsbatch.doctor import run_doctor

    raise typer.Exit(run_doctor(_settings(need_key=False), out))


# ``vsbatch emulator [OPTIONS]`` and ``vsbatch emulator sessions`` (vsbatch/emulator/cli.py).
from vsbatch.emulator.cli import emulator_app  # noqa: E402

cli.add_typer(emulator_app, name="emulator")


@command
def demo(
    concurrency: Annotated[int, typer.Option(help="Worker threads.")] = 8,
) -> None:
    """Run examples/ through the whole pipeline against a local emulator."""
    from vsbatch.demo import run_demo

    code = run_demo(out, err, concurrency=concurrency)
    raise typer.Exit(code)


def main() -> None:
    """Console-script entry point."""
    cli()


# Registers ``migrate list|plan|run`` and ``beat`` on ``cli`` (they live in their own module).
from vsbatch import migrations_cli as _migrations_cli  # noqa: E402, F401

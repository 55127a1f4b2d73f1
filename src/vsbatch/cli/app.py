"""The CLI's frame: the ``vsbatch`` Typer app, its consoles, shared options, settings loading,
and the one place errors become exit codes (:func:`guarded`).

Exit codes: 0 every row applied or skipped; 1 some rows failed (or drifted, for ``verify``);
2 usage or input errors (a refused file, rejected rows, a bad setting); 141 the reader of stdout
left early (``| head``); 130 Ctrl-C. ``report``/``status`` of a batch use the same table.

Startup: this module imports typer and the error tree only; each command imports what it
uses when it runs, so ``vsbatch --help`` starts without Rich's console, Celery, httpx, Redis
or pydantic, and the ledger-only commands (``status``, ``report``, ``failures``, ``cancel``)
without Celery or httpx (tests/e2e/test_startup.py). The consoles (:func:`out`, :func:`err`)
are built on first use, by the command that prints.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from vsbatch.errors import ConfigError, VsbatchError
from vsbatch.ops.terminal_text import safe

if TYPE_CHECKING:
    from rich.console import Console

    from vsbatch.config import Settings

cli = typer.Typer(
    name="vsbatch",
    help="Apply Stripe Identity VerificationSession updates to many sessions, safely.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    # Plain (click) help and usage errors: typer's Rich panels import rich.markdown, pygments
    # and rich.traceback, which double the time ``vsbatch --help`` takes to start.
    rich_markup_mode=None,
)


@functools.cache
def out() -> Console:
    """The console of standard output (``| head`` ends the command with 141, quietly)."""
    from vsbatch.cli.outputs import PipeConsole

    # Emoji codes off: ":x:" in a batch name or a message is text (markup is escaped by ``safe``).
    return PipeConsole(emoji=False)


@functools.cache
def err() -> Console:
    """The console of standard error: progress, hints and error lines."""
    from rich.console import Console

    return Console(stderr=True, emoji=False)


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
    for console in (out(), err()):
        if not console.is_terminal:
            console.width = PIPE_WIDTH


RESUMABLE = (
    "interrupted: nothing is lost; 'vsbatch resume BATCH', or 'vsbatch run' of the same file,"
    " finishes the batch"
)
# What is true when Ctrl-C stops each command (``submit`` updates its line once a batch opens).
interrupt_lines = {
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
            if _raised_from(exc, "vsbatch.worker.runtime", "Interrupted"):
                # Already said how to resume; worker threads may still be in flight: do not wait.
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(130)
            err().print(
                interrupt_lines.get(fn.__name__, RESUMABLE), highlight=False, soft_wrap=True
            )
            raise typer.Exit(130) from None
        except Exception as exc:
            # e.g. MISCONF: Redis's disk is full (from redis-py, or kombu's wrapping of it)
            if not (
                _raised_from(exc, "redis.exceptions", "RedisError")
                or _raised_from(exc, "vsbatch.store.resp", "RespError")
                or _raised_from(exc, "kombu.exceptions", "OperationalError")
            ):
                raise
            from vsbatch.store.refusals import redis_refusal

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
    from vsbatch.ops.redaction import redact_text

    message = redact_text(str(exc), pii=_redact_errors["pii"])
    err().print(f"[red]error:[/red] {safe(message)}", highlight=False, soft_wrap=True)


def command(fn: F) -> F:
    """Register a top-level command (errors handled by :func:`guarded`)."""
    cli.command()(guarded(fn))
    return fn


def cli_settings(*, live: bool = False, need_key: bool = True, **overrides: Any) -> Settings:
    from vsbatch.config import load_settings
    from vsbatch.ops import logs

    settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    _redact_errors["pii"] = settings.redact_pii
    # Interactive commands show warnings and errors; row-by-row lines are the workers'.
    logs.setup_logging(settings, level="WARNING")
    if need_key:
        if settings.is_live_key and not (live or settings.live):
            raise ConfigError("this is a live-mode key: add --live to update real sessions")
        settings.require_api_key()
    return settings

"""The ``vsbatch emulator`` command group: serve (seeded, with faults) and ``sessions``.

``vsbatch emulator [OPTIONS]`` serves in the foreground (:mod:`vsbatch.emulator.launch`);
``vsbatch emulator sessions`` lists a running emulator's sessions through its admin route
``GET /_emulator/sessions``. Registered on the main app by :mod:`vsbatch.cli.services`. Only
typer and the pure ``--fail-rate`` parser are imported here, so ``vsbatch --help`` stays light.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from vsbatch.emulator.fault_spec import FAULT_KINDS

__all__ = ["DEFAULT_URL", "emulator_app", "format_sessions", "metadata_summary"]

DEFAULT_URL = "http://127.0.0.1:12111"
_SUMMARY_WIDTH = 60

emulator_app = typer.Typer(
    name="emulator",
    help=(
        "Serve the local Stripe Identity emulator (no COMMAND: loopback, test keys only), or"
        " list a running one's sessions. See docs/emulator.md."
    ),
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help, as the main app's
)


def _fail(message: str, code: int = 2) -> NoReturn:
    from vsbatch.ops.terminal_text import visible

    typer.echo(f"error: {visible(message)}", err=True)
    raise typer.Exit(code)


@emulator_app.callback(invoke_without_command=True)
def serve_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 12111,
    sessions: Annotated[
        int, typer.Option(min=0, help="Sessions to seed in requires_input; ids go to stdout.")
    ] = 0,
    seed_file: Annotated[
        Path | None,
        typer.Option(help="Write the seeded ids here (CSV, 'id' column) instead of stdout."),
    ] = None,
    seed_from: Annotated[
        Path | None,
        typer.Option(help="Seed exactly the ids of this CSV's 'id' column (a batch file)."),
    ] = None,
    fail_rate: Annotated[
        str | None,
        typer.Option(
            metavar="KIND=SHARE,...",
            help="Fault shares, e.g. 503=0.05,hang=0.01; kinds: " + ", ".join(FAULT_KINDS) + ".",
        ),
    ] = None,
    latency_ms: Annotated[
        float | None, typer.Option(help="Mean added latency in ms [default: 0].")
    ] = None,
    latency_jitter_ms: Annotated[
        float | None, typer.Option(help="Uniform jitter around the latency in ms [default: 0].")
    ] = None,
    hang_seconds: Annotated[
        float | None, typer.Option(help="How long a 'hang' holds a request [default: 90].")
    ] = None,
    rate_limit: Annotated[
        float | None, typer.Option(help="Requests/s per account; 0 = off [default: 25].")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the session ids and fault draws [default: 0].")
    ] = None,
    faults_on_reads: Annotated[
        bool, typer.Option("--faults-on-reads", help="Fault retrieves and lists too.")
    ] = False,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request.")] = False,
) -> None:
    """Serve the emulator in the foreground until Ctrl-C (``sessions``: list a running one)."""
    if ctx.invoked_subcommand is not None:
        return
    from vsbatch.emulator.launch import ServeOptions, start

    fields: dict[str, Any] = {
        "latency_ms": latency_ms,
        "latency_jitter_ms": latency_jitter_ms,
        "hang_seconds": hang_seconds,
        "rate_limit": rate_limit,
        "seed": seed,
        "faults_on_reads": faults_on_reads or None,
    }
    options = ServeOptions(
        host=host,
        port=port,
        sessions=sessions,
        seed_file=seed_file,
        seed_from=seed_from,
        fail_rate=fail_rate,
        fields=fields,
        access_log=access_log,
    )
    raise typer.Exit(start(options, out=sys.stdout, err=sys.stderr))


def fetch_sessions(url: str, *, timeout: float = 10.0) -> list[dict[str, Any]]:
    """``GET URL/_emulator/sessions``; exits with one line (code 2) when no emulator answers."""
    # Here, not at the top: urllib.request (http.client, email) would slow ``vsbatch --help``.
    import urllib.error
    import urllib.request

    base = url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        _fail(f"--url {url!r} is not an http:// URL; e.g. {DEFAULT_URL}")
    target = base + "/_emulator/sessions"
    try:
        with urllib.request.urlopen(target, timeout=timeout) as answer:
            document = json.load(answer)
    except urllib.error.HTTPError as exc:
        _fail(
            f"{base} is not a vsbatch emulator (GET /_emulator/sessions answered {exc.code});"
            " pass the emulator's base URL with --url"
        )
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        _fail(
            f"no emulator answers at {base} ({reason}); start one with 'vsbatch emulator'"
            " or pass its address with --url"
        )
    except ValueError:
        _fail(f"{base} is not a vsbatch emulator (its /_emulator/sessions is not JSON)")
    sessions = document.get("sessions") if isinstance(document, dict) else None
    if not isinstance(sessions, list):
        _fail(f"{base} is not a vsbatch emulator (no session list in its answer)")
    return sessions


def metadata_summary(session: dict[str, Any], width: int = _SUMMARY_WIDTH) -> str:
    """``k=v,k=v`` cut to ``width`` characters (``-`` when empty, ``(redacted)`` when so)."""
    if session.get("redacted"):
        return "(redacted)"
    metadata = session.get("metadata") or {}
    text = ",".join(f"{key}={value}" for key, value in metadata.items()) or "-"
    if len(text) > width:
        text = f"{text[: width - 12]}...({len(metadata)} keys)"
    return text


def format_sessions(sessions: list[dict[str, Any]]) -> list[str]:
    """Aligned lines: a header, then ``id account status metadata`` per session."""
    from vsbatch.ops.terminal_text import visible

    rows = [("id", "account", "status", "metadata")]
    rows += [
        (
            visible(s.get("id")),
            visible(s.get("account") or "-"),
            visible(s.get("status")),
            visible(metadata_summary(s)),
        )
        for s in sessions
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[3]])
        for row in rows
    ]


@emulator_app.command("sessions")
def sessions_command(
    url: Annotated[str, typer.Option(help="Base URL of the running emulator.")] = DEFAULT_URL,
) -> None:
    """List a running emulator's sessions: id, account, status and a metadata summary."""
    sessions = fetch_sessions(url)
    try:
        for line in format_sessions(sessions):
            typer.echo(line)
    except BrokenPipeError:
        # The reader left (``| head``): end quietly with 141, as SIGPIPE would, and keep the
        # interpreter's final flush of stdout from failing a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(141) from None
    typer.echo(f"{len(sessions)} sessions", err=True)

"""The ``explain`` command: one row's whole story (the story itself is :mod:`vsbatch.ops.explain`).

A ledger-only command: it imports neither Celery nor httpx and needs no Stripe key.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from vsbatch.cli.app import RedactOpt, cli_settings, command, interrupt_lines, out
from vsbatch.errors import InputError
from vsbatch.ops.terminal_text import safe

USAGE = "use BATCH ROW or BATCH:ROW (e.g. b_0123:12)"
interrupt_lines["explain"] = "interrupted: nothing was written"


def parse_target(batch: str, row: str | None) -> tuple[str, int]:
    """``(batch id, row number)`` from ``BATCH ROW`` or ``BATCH:ROW``.

    Raises:
        InputError: Not one of those forms, or the row is not a positive whole number.
    """
    if row is None:
        batch, colon, row = batch.rpartition(":")
        if not colon:
            raise InputError(f"no row given: {USAGE}")
    if not batch or ":" in batch or not row.isdigit() or int(row) < 1:
        raise InputError(f"{safe_id(batch, row)} names no row: {USAGE}")
    return batch, int(row)


def safe_id(batch: str, row: str) -> str:
    return repr(f"{batch}:{row}" if batch else row)


@command
def explain(
    batch: Annotated[str, typer.Argument(help="The batch id, or BATCH:ROW.")],
    row: Annotated[str | None, typer.Argument(help="The row number (CSV line).")] = None,
    story_format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    redact: RedactOpt = None,
) -> None:
    """One row's whole story: input, transitions, attempts, keys, answers, outcome, next step."""
    from vsbatch.ops.explain import explain_row, story_lines
    from vsbatch.worker.runtime import ledger_for

    if story_format not in ("text", "json"):
        raise InputError(f"unknown format {story_format!r}: use text or json")
    batch_id, number = parse_target(batch, row)
    settings = cli_settings(need_key=False)
    pii = settings.redact_pii if redact is None else redact
    with ledger_for(settings) as ledger:
        story = explain_row(ledger, batch_id, number, pii=pii)
    if story_format == "json":
        typer.echo(json.dumps(story.to_dict(), ensure_ascii=False, indent=2))
        return
    for line in story_lines(story):
        out().print(safe(line), highlight=False, soft_wrap=True)

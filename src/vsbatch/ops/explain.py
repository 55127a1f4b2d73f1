"""One row's whole story (``vsbatch explain``): its input, transitions, attempts, keys, answers,
read-backs, outcome and the next step, assembled from the ledger.

The row's record is the base of the story and is complete on its own: a row applied on its
first attempt may have no event at all. The batch's events stream adds the time of each
transition. A Redis stream cannot be filtered by a field, so :func:`read_transitions` walks it
from the newest entry back, ``PAGE`` entries a call, and stops at the row's first transition
(out of ``queued``: rows never go back there), at the start of the stream, or after
``SCAN_CAP`` entries; it keeps the newest ``shown`` transitions of the row and counts the
older ones. Memory and round trips are bounded whatever the size of the batch.

What the ledger does not keep cannot be told: each event holds only row, from, to and time; the
record holds the last answer (a success clears the error fields), the attempts across keys,
the current key (earlier generations are ``<key>``, ``<key>~g2``...), and read-backs only as
their effect (``confirmed_by_read_back``, a skip with the session's status, a new key).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import redis

from vsbatch.errors import NotFoundError
from vsbatch.model.row import TERMINAL, Outcome, RowRecord, SkipReason
from vsbatch.model.update import key_of
from vsbatch.ops.next_steps import Step, is_retryable
from vsbatch.ops.reasons import reason, shown, why
from vsbatch.ops.redaction import redact_record
from vsbatch.store.codec import as_text
from vsbatch.store.ledger_reader import LedgerReader

__all__ = ["SCAN_CAP", "SHOWN", "Story", "Transition", "explain_row", "story_lines"]

PAGE = 500  # stream entries per XREVRANGE call
SCAN_CAP = 100_000  # stream entries read at most (the ledger's default events_maxlen)
SHOWN = 50  # a row's transitions kept, newest first; older ones are counted
GENERATION_MARK = "~g"  # a new key generation: "<key>~g2", "<key>~g3" (process_row._next_key)
MISSING_AFTER_READ_BACKS = "change still missing after read-backs"


@dataclass(frozen=True)
class Transition:
    """One move of the row, from the batch's events stream."""

    at: float
    source: str
    target: str


@dataclass
class Story:
    """Everything the ledger knows about one row, in the order a person reads it."""

    batch_id: str
    row: int
    session_id: str
    account: str | None
    update: dict[str, Any] | None
    cells: dict[str, Any] | None  # a rejected row's input cells, as read
    created_at: float
    updated_at: float
    outcome: Outcome
    reason: str
    why: str
    attempts: int
    keys: list[str]
    error_type: str | None
    error_code: str | None
    error_message: str | None
    request_id: str | None
    session_status: str | None
    retryable: bool | None
    unsettled: bool
    read_back: str | None
    transitions: list[Transition] = field(default_factory=list)
    hidden: int = 0  # older transitions of the row found but not kept
    gap: str | None = None  # why earlier transitions may be missing
    next_step: Step | None = None

    @property
    def id(self) -> str:
        """``"<batch>:<row>"``, the application API's update id."""
        return f"{self.batch_id}:{self.row}"

    def to_dict(self) -> dict[str, Any]:
        """The story as JSON-ready data (``--format json``)."""
        return {
            "id": self.id,
            "batch": self.batch_id,
            "row": self.row,
            "input": {
                "session": self.session_id,
                "account": self.account,
                "update": self.update,
                "cells": self.cells,
            },
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "why": self.why,
            "attempts": self.attempts,
            "idempotency_keys": self.keys,
            "answer": {
                "error_type": self.error_type,
                "error_code": self.error_code,
                "error_message": self.error_message,
                "request_id": self.request_id,
                "session_status": self.session_status,
                "retryable": self.retryable,
                "unsettled": self.unsettled,
            },
            "read_back": self.read_back,
            "transitions": [
                {"at": t.at, "from": t.source, "to": t.target} for t in self.transitions
            ],
            "transitions_not_shown": self.hidden,
            "transitions_gap": self.gap,
            "next_step": asdict(self.next_step) if self.next_step else None,
        }


def explain_row(
    ledger: LedgerReader[redis.Redis],
    batch_id: str,
    row: int,
    *,
    pii: bool = False,
    shown: int = SHOWN,
    scan_cap: int = SCAN_CAP,
) -> Story:
    """The story of row ``row`` of batch ``batch_id``.

    Args:
        ledger: The ledger to read (nothing is written).
        batch_id: The batch.
        row: The row number (the CSV's line number; header = 1).
        pii: Redact emails and phone numbers from the update and the messages.
        shown: Most transitions to keep (the newest); older ones are only counted.
        scan_cap: Most stream entries to read.

    Raises:
        NotFoundError: The batch or the row is unknown (or expired).
    """
    ledger.get_batch(batch_id)
    try:
        record = ledger.get_row(batch_id, row)
    except NotFoundError:
        where = _row_range(ledger, batch_id)
        raise NotFoundError(f"batch {batch_id} has no row {row}{where}") from None
    record = redact_record(record, pii=pii)
    transitions, hidden, gap = read_transitions(
        ledger, batch_id, row, shown=shown, scan_cap=scan_cap
    )
    return Story(
        batch_id=batch_id,
        row=row,
        session_id=record.session_id,
        account=record.account,
        update=record.params,
        cells=record.extra.get("raw"),
        created_at=record.created_at,
        updated_at=record.updated_at,
        outcome=record.outcome,
        reason=reason(record),
        why=why(record),
        attempts=record.attempts,
        keys=key_generations(key_of(record)),
        error_type=record.error_type,
        error_code=record.error_code,
        error_message=record.error_message,
        request_id=record.request_id,
        session_status=record.session_status,
        retryable=record.retryable,
        unsettled=record.unsettled,
        read_back=read_back(record),
        transitions=transitions,
        hidden=hidden,
        gap=gap,
        next_step=next_step(record),
    )


def _row_range(ledger: LedgerReader[redis.Redis], batch_id: str) -> str:
    low, high = cast(
        list[bytes | None], ledger.client.hmget(ledger.keys.batch(batch_id), ["min_row", "max_row"])
    )
    if low is None or high is None:
        return " (it has no rows)"
    return f" (its rows are {as_text(low)} to {as_text(high)})"


def read_transitions(
    ledger: LedgerReader[redis.Redis], batch_id: str, row: int, *, shown: int, scan_cap: int
) -> tuple[list[Transition], int, str | None]:
    """The row's transitions in time order (the newest ``shown``), how many older ones were
    left out, and why earlier ones may be missing (None: none are)."""
    client, stream, wanted = ledger.client, ledger.keys.events(batch_id), str(row)
    kept: list[Transition] = []
    hidden = read = 0
    upper = "+"
    while read < scan_cap:
        count = min(PAGE, scan_cap - read)
        page = cast(
            list[tuple[Any, dict[Any, Any]]],
            client.xrevrange(stream, max=upper, min="-", count=count),
        )
        read += len(page)
        for _entry_id, raw in page:
            fields = {as_text(k): as_text(v) for k, v in raw.items()}
            if fields.get("row") != wanted:
                continue
            if len(kept) < shown:
                kept.append(Transition(float(fields["at"]), fields["from"], fields["to"]))
            else:
                hidden += 1
            if fields["from"] == Outcome.QUEUED.value:
                return kept[::-1], hidden, None  # the row's first transition
        if len(page) < count:  # the start of the stream
            return kept[::-1], hidden, _trimmed(ledger, stream)
        upper = "(" + as_text(page[-1][0])
    return kept[::-1], hidden, f"only the batch's newest {read} events were read"


def _trimmed(ledger: LedgerReader[redis.Redis], stream: str) -> str | None:
    """Why the stream may lack the row's early transitions: it is capped (MAXLEN ~)."""
    try:
        info = cast(dict[Any, Any], ledger.client.xinfo_stream(stream))
    except redis.ResponseError:  # no stream at all (no event written), or no XINFO
        return None
    added = info.get("entries-added", info.get(b"entries-added"))
    if added is not None and int(added) > int(info.get("length", info.get(b"length", 0))):
        return "older events of the batch were trimmed from its capped events stream"
    return None


def key_generations(key: str | None) -> list[str]:
    """Every idempotency key the row was sent under: ``k``, ``k~g2``, ... up to the current."""
    if not key:
        return []
    base, mark, generation = key.rpartition(GENERATION_MARK)
    if not mark or not generation.isdigit() or int(generation) < 2:
        return [key]
    return [base] + [f"{base}{GENERATION_MARK}{g}" for g in range(2, int(generation) + 1)]


def read_back(record: RowRecord) -> str | None:
    """What the ledger shows of the row's read-backs (None: it records none)."""
    missing = len(key_generations(key_of(record))) - 1
    told = []
    if missing:
        told.append(
            f"{missing} read-back(s) after a stored 500 showed the change missing; each led to"
            " a new key"
        )
    if record.reason == "confirmed_by_read_back":
        told.append("a read-back after an unclear answer found the change was there: applied")
    elif record.outcome is Outcome.SKIPPED and record.reason == SkipReason.NOT_UPDATABLE.value:
        status = record.session_status or "unknown"
        if record.attempts:
            told.append(f"Stripe refused the update; a read-back found the session {status}")
        else:
            told.append(f"read first: the session was {status}, which takes no update")
    elif record.outcome is Outcome.SKIPPED and record.reason == SkipReason.UNCHANGED.value:
        told.append("read first: the session already was as the row asks")
    elif record.error_message == MISSING_AFTER_READ_BACKS:
        told.append("the last key's read-back showed the change missing too")
    elif record.unsettled and record.outcome is Outcome.FAILED:
        told.append(
            "the last answers left it unknown whether Stripe applied the update, and no"
            " read-back showed the change: the key was kept, Stripe may still apply it"
        )
    return "; ".join(told) or None


def next_step(record: RowRecord) -> Step | None:
    """The command that makes sense for this row now (None: nothing to do)."""
    bid = record.batch_id
    if record.outcome in (Outcome.SUCCEEDED, Outcome.SKIPPED):
        return None
    if is_retryable(record):
        return Step(f"vsbatch retry {bid}", "this failure may succeed on a second try")
    if record.outcome in TERMINAL:
        return Step(f"vsbatch failures {bid} > fix.csv", "fix the row by hand and run it again")
    return Step(
        f"vsbatch status {bid} --watch",
        f"the row is not final yet; if no worker runs, 'vsbatch resume {bid}'",
    )


def when(at: float) -> str:
    """A ledger time (seconds since the epoch) as a person reads it, in UTC."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def story_lines(story: Story) -> list[str]:
    """The story in plain words, one statement a line (data text as it is: escape to print)."""
    lines = [f"row {story.row} of batch {story.batch_id} ({story.id})"]
    where = f"account {story.account}" if story.account else "the platform account"
    lines.append(f"input: session {story.session_id} on {where}")
    if story.update is not None or not story.cells:
        lines.append(f"  update: {shown(story.update)}")
    if story.cells:
        lines.append(f"  cells as read: {shown(story.cells)}")
    lines.append(f"  added {when(story.created_at)}")
    lines.extend(_history_lines(story))
    lines.extend(_attempt_lines(story))
    if story.read_back:
        lines.append(f"read-back: {story.read_back}")
    elif story.outcome is Outcome.SUCCEEDED and len(story.keys) < 2:
        lines.append("read-back: none needed, Stripe's answer was clear")
    elif story.attempts:
        lines.append("read-back: the ledger records none for this row")
    outcome = f"outcome: {story.outcome.value}"
    if story.why:
        outcome += f" ({story.why})"
    if story.outcome in TERMINAL and story.updated_at:
        outcome += f" at {when(story.updated_at)}"
    lines.append(outcome)
    if story.next_step is None:
        lines.append("next: nothing to do")
    else:
        lines.append(f"next: {story.next_step.command}  # {story.next_step.why}")
    return lines


def _history_lines(story: Story) -> list[str]:
    if not story.transitions:
        tail = f" ({story.gap})" if story.gap else ""
        return [f"history: no transition in the events stream; the record tells the rest{tail}"]
    lines = ["history:"]
    if story.hidden:
        lines.append(f"  …{story.hidden} earlier events not shown")
    if story.gap:
        lines.append(f"  …earlier events may be missing: {story.gap}")
    lines.extend(f"  {when(t.at)}  {t.source} -> {t.target}" for t in story.transitions)
    return lines


def _attempt_lines(story: Story) -> list[str]:
    if not story.attempts:
        return ["attempts: never sent to Stripe"]
    times = "time" if story.attempts == 1 else "times"
    lines = [f"attempts: sent {story.attempts} {times} in all"]
    for number, key in enumerate(story.keys, 1):
        label = "key" if number == 1 else f"new key (generation {number})"
        lines.append(f"  {label}: {key}")
    if story.error_type or story.error_code or story.error_message:
        error = ": ".join(
            str(p) for p in (story.error_type, story.error_code, story.error_message) if p
        )
        last = "last answer" if story.outcome is not Outcome.SUCCEEDED else "answer"
        lines.append(f"  {last}: {error}")
    if story.outcome is Outcome.SUCCEEDED:
        status = f", session now {story.session_status}" if story.session_status else ""
        lines.append(f"  answer: applied{status}")
    if story.request_id:
        lines.append(f"  request id: {story.request_id}")
    if story.unsettled:
        lines.append("  an attempt under the current key ended unknown: Stripe may still apply it")
    return lines

"""Applying one ledger row to Stripe: the worker's domain logic, free of Celery.

One row, in order: skip if the row is already final, if its batch was canceled before it was
sent, or if a newer update of the same session was applied; wait (``Later``) while an older
update of the same session is unfinished (per-session FIFO, kept by the ledger); take the
session's lock; optionally read the session first (only a row never sent); send the update
under the row's idempotency key (same key on every attempt), each attempt through the fleet's
rate limiter; record exactly one terminal outcome.
The lock's token fences the row: a worker that lost the lock (paused past its heartbeat)
neither sends nor writes the row again (``docs/fencing.md``). A canceled batch's row that was
or may have been sent (running, or retrying after an attempt) is never skipped: under its lock
it is sent again under its key, which Stripe replays if it had executed, and ends as it really
did (``docs/operations.md``, "Canceling a batch").

Ambiguous answers are resolved by reading the session back, never by a blind retry under a
new key. A timeout, a dropped connection or a gateway's 5xx is first retried under the *same*
key (Stripe then replays, refuses with 409 while the first request still runs, or executes it
once). When its retries run out with the change not visible, the row is not ended while Stripe
may still apply it: it goes back in line under that key, keeping its place in the session's
order, for ``UNSETTLED_ROUNDS`` rounds, then fails retryable with the key kept
(``docs/retries.md``). Only a stored 500
(``Stripe-Should-Retry: false`` with a Stripe error body) is a finished request, so after a
read-back that shows the change missing it is safe to try again under a new key, which the
ledger records.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import tenacity

from vsbatch.bootstrap import Deps
from vsbatch.errors import (
    IdempotencyError,
    InvalidRequestError,
    LockLostError,
    RateLimitBusy,
    RateLimitError,
    SessionBusyError,
    StripeError,
)
from vsbatch.model.row import BatchState, Outcome, RowRecord, SkipReason
from vsbatch.model.update import SessionUpdate, parse_update
from vsbatch.ops import metrics
from vsbatch.stripe.retry import decide
from vsbatch.stripe.session import VerificationSession

log = logging.getLogger(__name__)

UPDATABLE_STATUS = "requires_input"
UPDATE_PARAMS = ("metadata", "options", "provided_details", "type")
# A read-back that shows the change missing after a *finished* ambiguous answer earns the row a
# fresh key; this bounds how many, so a session that keeps refusing cannot loop forever.
MAX_KEY_GENERATIONS = 3


# A session locked by another update: how soon to look again.
BUSY_DELAY = 2.0
# An older update of the same session is queued or running: it usually ends within a request's
# time, so look again soon. (Behind a parked older update, the row waits BUSY_DELAY.)
ORDER_DELAY = 0.5
# Parked rows (see ``RowOptions.park_hours``) come back after a growing pause, capped here.
MAX_PARK_DELAY = 300.0
# A row whose in-task retries all met 429s goes back in line this many times (each round a
# full set of attempts, pausing 2, 4, 8, ... s) before it fails, retryable.
RATE_LIMIT_ROUNDS = 8
# A row whose in-task retries ended on an answer that leaves the request unsettled (a gateway's
# 5xx, a timeout, a dropped connection, 409 "in use", a 200 that is not our session) goes back
# in line this many times, same key, pausing 2, 4, 8, ... s: a request Stripe still executes
# behind such an answer lands meanwhile, and the next send under the key is replayed (or the
# request executes once). Later updates of the session wait behind it (the order gate).
UNSETTLED_ROUNDS = 6


@dataclass(frozen=True)
class RowOptions:
    """Per-batch processing choices, carried in the task message."""

    read_first: bool = False  # read each session before writing: skip unchanged / not updatable
    lock_wait: float = 5.0  # seconds to wait for a session's lock before giving the row back
    # Application updates: a row whose retries ran out on a retryable error is parked (kept
    # RETRYING, re-enqueued later) instead of failing, until this many hours after it was
    # submitted (Stripe keeps idempotency keys at least 24 h). 0 = fail at once (CSV batches).
    park_hours: float = 0.0

    def to_message(self) -> dict[str, Any]:
        """JSON-safe form for a Celery message."""
        return {
            "read_first": self.read_first,
            "lock_wait": self.lock_wait,
            "park_hours": self.park_hours,
        }

    @classmethod
    def from_message(cls, data: dict[str, Any] | None) -> RowOptions:
        """Inverse of ``to_message`` (unknown keys ignored, for rolling upgrades)."""
        data = data or {}
        return cls(
            read_first=bool(data.get("read_first", False)),
            lock_wait=float(data.get("lock_wait", 5.0)),
            park_hours=float(data.get("park_hours", 0.0)),
        )


@dataclass(frozen=True)
class Later:
    """The row is not finished: send it again after ``delay`` seconds."""

    delay: float


@dataclass
class ChunkResult:
    """A chunk run: rows finished, rows left for a new message, rows to retry after a pause."""

    finished: list[int] = field(default_factory=list)
    remaining: list[int] = field(default_factory=list)
    later: dict[float, list[int]] = field(default_factory=dict)


def process_chunk(
    deps: Deps,
    batch_id: str,
    rows: Sequence[int],
    *,
    options: RowOptions,
    budget: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ChunkResult:
    """Process rows in order until done or until ``budget`` seconds have passed.

    Stopping at the budget keeps every task far shorter than the broker's visibility timeout;
    the caller re-enqueues ``remaining``, and each group of ``later`` after its pause.
    """
    result = ChunkResult()
    started = clock()
    deps.ledger.touch(batch_id)  # the batch is moving (see ``submit.sweep_stalled``)
    for index, row in enumerate(rows):
        if clock() - started > budget:
            result.remaining = list(rows[index:])
            break
        outcome = process_row(deps, batch_id, row, options=options, sleep=sleep)
        if isinstance(outcome, Later):
            result.later.setdefault(outcome.delay, []).append(row)
        else:
            result.finished.append(row)
    return result


def process_row(
    deps: Deps,
    batch_id: str,
    row: int,
    *,
    options: RowOptions | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome | Later:
    """Bring one row to a terminal outcome, or say when to try it again (``Later``)."""
    options = options or RowOptions()
    ledger = deps.ledger
    record = ledger.get_row(batch_id, row)
    if record.is_terminal:
        return record.outcome
    canceled = ledger.get_batch(batch_id).state is BatchState.CANCELED
    # Never sent: skipped at once, guarded so that a row a worker began meanwhile is kept. A row
    # that was or may have been sent goes on, and is resolved under its session's lock.
    if canceled and record.outcome is Outcome.QUEUED:
        reason = SkipReason.CANCELED.value
        if _record(deps, record, Outcome.SKIPPED, only_from=Outcome.QUEUED, reason=reason):
            return Outcome.SKIPPED
    if record.params is None:  # cannot happen for rows the ledger queued; never send it
        return _finish(deps, record, Outcome.REJECTED, reason="row has no update")
    # Per-session FIFO: only the oldest unfinished update of a session may be sent.
    older = ledger.older_pending(record)
    if older is not None:
        return Later(ORDER_DELAY if older is not Outcome.RETRYING else BUSY_DELAY)
    update = parse_update(record.params)
    locks = deps.locks
    try:
        with locks.hold(record.account, record.session_id, wait=options.lock_wait) as token:
            # Fenced: if this worker loses the lock (paused past its heartbeat), none of its
            # writes of the row lands and it sends nothing more (see ``locks``).
            with deps.ledger.fenced(locks.fence(record.account, record.session_id, token)):
                return _apply_locked(deps, record, update, options, token, sleep, canceled)
    except LockLostError:
        log.warning("row %s of %s: session lock lost, row given back", row, batch_id)
        return Later(BUSY_DELAY)
    except SessionBusyError:
        # Another update holds the session: the row stays in flight and comes back soon.
        return Later(BUSY_DELAY)
    except RateLimitBusy as busy:
        # The account's rate is booked far ahead: come back when a slot is near.
        return Later(max(BUSY_DELAY, busy.retry_after))


def _apply_locked(
    deps: Deps,
    record: RowRecord,
    update: SessionUpdate,
    options: RowOptions,
    token: str,
    sleep: Callable[[float], None],
    canceled: bool = False,
) -> Outcome | Later:
    """The part of a row's work done while holding its session's lock (``token``)."""
    ledger = deps.ledger
    # Read again now that the lock is ours: a worker that held it may have sent the row (and
    # recorded a new key) or ended it while this one waited.
    record = ledger.get_row(record.batch_id, record.row)
    if record.is_terminal:
        return record.outcome
    sent = _may_have_been_sent(record)
    if canceled:
        if not sent:
            return _finish(deps, record, Outcome.SKIPPED, reason=SkipReason.CANCELED.value)
        # Resent under its key (replayed if it executed); it ends now, never parked.
        options = replace(options, park_hours=0.0)
    # Checked under the lock: an update applied after ours was queued wins (submission order).
    # A retried row keeps the place in line of the update it retries (``parent_seq``).
    submitted = int(record.extra.get("parent_seq", record.seq))
    if ledger.applied_seq(record.account, record.session_id) > submitted:
        return _finish(deps, record, Outcome.SKIPPED, reason=SkipReason.SUPERSEDED.value)
    attempts = record.attempts
    # A row that may have been sent is never skipped as "unchanged": its own request may be
    # what changed the session. Its resend under the same key tells (Stripe replays).
    if options.read_first and not sent:
        try:
            current = _read(deps, record, sleep)
        except StripeError as err:
            return _fail(deps, record, options, err, attempts)
        skipped = _skip_reason(update, current)
        if skipped is not None:
            return _finish(
                deps, record, Outcome.SKIPPED, reason=skipped.value, session_status=current.status
            )
    if not ledger.transition(record.batch_id, record.row, Outcome.RUNNING, attempts=attempts):
        # Ended by another worker while this one waited for the lock (``record`` is stale).
        return ledger.get_row(record.batch_id, record.row).outcome
    key = record.idempotency_key or ""
    counter = _Counter(attempts, unsettled=record.unsettled)
    for generation in range(1, MAX_KEY_GENERATIONS + 1):
        try:
            session = _send(deps, record, update, key, counter, token, sleep)
        except StripeError as err:
            attempts = counter.value
            resolved = _resolve_error(
                deps, record, options, update, err, attempts, sleep, earlier=counter.unsettled
            )
            if resolved is not None:
                return resolved
            # A finished ambiguous answer and a read-back without the change: new key, again.
            key = _next_key(record, generation + 1)
            counter.unsettled = False  # a new key has no attempt in flight
            ledger.transition(
                record.batch_id,
                record.row,
                Outcome.RETRYING,
                idempotency_key=key,
                attempts=attempts,
                unsettled=False,
                **_error_fields(err),
            )
            continue
        return _succeed(deps, record, session, counter.value)
    return _fail(
        deps, record, options, None, counter.value, message="change still missing after read-backs"
    )


@dataclass
class _Counter:
    """Attempts made for one row, across keys (stored in the ledger as ``attempts``), and
    whether one of the current key's attempts, in this round or an earlier one (the row's
    ``unsettled``), ended unknown: it may still land later."""

    value: int
    unsettled: bool = False


def _send(
    deps: Deps,
    record: RowRecord,
    update: SessionUpdate,
    key: str,
    counter: _Counter,
    token: str,
    sleep: Callable[[float], None],
) -> VerificationSession:
    """Send the update with bounded retries under one key, counting attempts in ``counter``."""
    client = deps.stripe()
    form = update.to_form()

    def attempt() -> VerificationSession:
        counter.value += 1
        metrics.observe_limiter_wait(deps.limiter.wait(record.account), record.account)
        # The fence, as late as possible before the request (a pause may come at any point).
        deps.locks.confirm(record.account, record.session_id, token)
        started = time.monotonic()
        try:
            session = client.update(
                record.session_id, form, idempotency_key=key, stripe_account=record.account
            )
        except StripeError as err:
            elapsed = time.monotonic() - started
            verdict = decide(err)
            counter.unsettled |= verdict.ambiguous and not verdict.stored
            metrics.observe_attempt(verdict.reason, err.http_status, elapsed, record.account)
            if isinstance(err, RateLimitError) and not err.is_lock_timeout:
                deps.limiter.penalize(record.account)
            raise
        metrics.observe_attempt("ok", 200, time.monotonic() - started, record.account)
        return session

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        fields = _error_fields(error) if isinstance(error, StripeError) else {}
        metrics.observe_retry(decide(error).reason if error else "internal", record.account)
        deps.ledger.transition(
            record.batch_id,
            record.row,
            Outcome.RETRYING,
            attempts=counter.value,
            unsettled=counter.unsettled,
            **fields,
        )
        deps.locks.extend(record.account, record.session_id, token)

    with metrics.in_flight(record.account):
        return deps.policy.retrying(sleep=sleep, before_sleep=before_sleep)(attempt)


def _resolve_error(
    deps: Deps,
    record: RowRecord,
    options: RowOptions,
    update: SessionUpdate,
    err: StripeError,
    attempts: int,
    sleep: Callable[[float], None],
    *,
    earlier: bool = False,
) -> Outcome | Later | None:
    """Turn the last error into an outcome; None means "read back: missing; use a new key".

    ``earlier``: an earlier attempt under the key ended unknown, so its request may still land
    even when the last answer (a 503, a 429) says this one did not run.
    """
    verdict = decide(err)
    if earlier and verdict.retry and not verdict.ambiguous:
        verdict = replace(verdict, ambiguous=True, stored=False)
    # Stripe's code for "not in requires_input" is unpublished: any 400 that does not name one
    # of the update's own parameters may be it, and a read-back tells for sure.
    status_refusal = (
        isinstance(err, InvalidRequestError)
        and not isinstance(err, IdempotencyError)
        and err.http_status == 400
        and not (err.param or "").startswith(UPDATE_PARAMS)
    )
    if not (verdict.ambiguous or status_refusal):
        return _fail(deps, record, options, err, attempts)
    unsettled = not verdict.stored and not status_refusal
    try:
        current = _read(deps, record, sleep)
    except StripeError:
        return _fail(deps, record, options, err, attempts, retryable=True, unsettled=unsettled)
    if status_refusal:
        if current.status != UPDATABLE_STATUS:
            return _finish(
                deps,
                record,
                Outcome.SKIPPED,
                reason=SkipReason.NOT_UPDATABLE.value,
                session_status=current.status,
                attempts=attempts,
                **_error_fields(err),
            )
        return _fail(deps, record, options, err, attempts)
    if update.is_satisfied_by(current.model_dump()):
        # The change took effect although the answer said otherwise (e.g. a stored 500).
        return _succeed(deps, record, current, attempts, reason="confirmed_by_read_back")
    if not verdict.stored:
        # Only a stored 500 proves the request finished. After anything else (a timeout, a
        # dropped connection, 409 "in use", a gateway's 502/504, a 200 that is not our session)
        # Stripe may still be executing it, and a new key could apply it twice. Keep the key: a
        # later retry under it is safe (Stripe replays, says 409 again, or executes it once).
        return _fail(deps, record, options, err, attempts, retryable=True, unsettled=True)
    return None


def _may_have_been_sent(record: RowRecord) -> bool:
    """False only for a row never sent: queued, or retrying after a failed read-first."""
    if record.outcome is Outcome.QUEUED:
        return False
    return not (record.outcome is Outcome.RETRYING and record.attempts == 0)


def _read(deps: Deps, record: RowRecord, sleep: Callable[[float], None]) -> VerificationSession:
    """Retrieve the session, with the same bounded retries and the same rate limiter."""
    client = deps.stripe()

    def attempt() -> VerificationSession:
        metrics.observe_limiter_wait(deps.limiter.wait(record.account), record.account)
        return client.retrieve(record.session_id, stripe_account=record.account)

    return deps.policy.retrying(sleep=sleep)(attempt)


def _skip_reason(update: SessionUpdate, session: VerificationSession) -> SkipReason | None:
    if session.status != UPDATABLE_STATUS:
        return SkipReason.NOT_UPDATABLE
    if update.is_satisfied_by(session.model_dump()):
        return SkipReason.UNCHANGED
    return None


def _next_key(record: RowRecord, generation: int) -> str:
    base = (record.idempotency_key or "").rsplit("~g", 1)[0]
    return f"{base}~g{generation}"[:255]


def _error_fields(err: StripeError | None) -> dict[str, Any]:
    if err is None:
        return {}
    return {
        "error_type": err.error_type,
        "error_code": err.code,
        "error_message": err.user_message,
        "request_id": err.request_id,
    }


def _succeed(
    deps: Deps,
    record: RowRecord,
    session: VerificationSession,
    attempts: int,
    *,
    reason: str | None = None,
) -> Outcome:
    deps.ledger.mark_applied(record.account, record.session_id, record.seq)
    meta = session.last_response
    return _finish(
        deps,
        record,
        Outcome.SUCCEEDED,
        reason=reason,
        attempts=attempts,
        request_id=meta.request_id if meta else None,
        session_status=session.status,
    )


def _fail(
    deps: Deps,
    record: RowRecord,
    options: RowOptions,
    err: StripeError | None,
    attempts: int,
    *,
    retryable: bool | None = None,
    message: str | None = None,
    unsettled: bool = False,
) -> Outcome | Later:
    """Record a failure, or put a retryable one back in line (parked, paced or unsettled)."""
    fields = _error_fields(err)
    if message is not None:
        fields["error_message"] = message
    if retryable is None:
        retryable = decide(err).retry if err is not None else True
    rounds = attempts // max(1, deps.policy.max_attempts)
    parked_until = record.created_at + options.park_hours * 3600
    parked = bool(options.park_hours) and deps.ledger.now() < parked_until
    # A 429 says "slower", not "broken": the limiter has already cut the fleet's rate, so the
    # row goes back in line (key kept) rather than failing, for a bounded number of rounds.
    paced = isinstance(err, RateLimitError) and rounds < RATE_LIMIT_ROUNDS
    # An unsettled request may still land: the row must not end (and let the session's next
    # update go first) before a send under its key can tell, or the rounds run out.
    waiting = unsettled and rounds < UNSETTLED_ROUNDS
    if retryable and (parked or paced or waiting):
        # Long waits happen outside the task: the row keeps its key and comes back later.
        # The flag outlives the round: a later round's "not run" answer cannot end the row.
        deps.ledger.transition(
            record.batch_id,
            record.row,
            Outcome.RETRYING,
            attempts=attempts,
            unsettled=unsettled or record.unsettled,
            **fields,
        )
        cap = min(MAX_PARK_DELAY, deps.settings.visibility_timeout / 2)
        return Later(min(cap, 2.0**rounds))
    return _finish(deps, record, Outcome.FAILED, attempts=attempts, retryable=retryable, **fields)


def _finish(deps: Deps, record: RowRecord, outcome: Outcome, **fields: Any) -> Outcome:
    _record(deps, record, outcome, **fields)
    return outcome


def _record(
    deps: Deps,
    record: RowRecord,
    outcome: Outcome,
    *,
    only_from: Outcome | None = None,
    **fields: Any,
) -> bool:
    """Move the row to ``outcome`` (see ``Ledger.transition``); log and count a real move."""
    moved = deps.ledger.transition(
        record.batch_id, record.row, outcome, only_from=only_from, **fields
    )
    if moved:
        # Failed rows have no skip reason: their error code (or class) says why.
        reason = fields.get("reason") or fields.get("error_code") or fields.get("error_type")
        metrics.observe_row(outcome.value, reason, record.account)
        log.info(
            "row %s",
            outcome.value,
            extra={
                "batch": record.batch_id,
                "row": record.row,
                "session": record.session_id,
                "outcome": outcome.value,
                "reason": reason,
                "attempts": fields.get("attempts", record.attempts),
                "request_id": fields.get("request_id"),
            },
        )
    return moved

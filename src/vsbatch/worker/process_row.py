"""Applying one ledger row to Stripe: the worker's domain logic, free of Celery.

One row, in order: claim it (``claim_row.lua``, one round trip: skip if the row is already
final, if its batch was canceled before it was sent, or if a newer update of the same session
was applied; wait (``Later``) while an older update of the same session is unfinished
(per-session FIFO); take the session's lock); optionally read the session first (only a row
never sent); send the update under the row's idempotency key (same key on every attempt), each
attempt through the fleet's rate limiter, whose slot also checks the lock; end the row with
exactly one outcome (``finish_row.lua``, one round trip, which also lets the lock go; see
:mod:`vsbatch.worker.row_endings`).
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

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import tenacity

from vsbatch.bootstrap import Deps
from vsbatch.errors import LockLostError, RateLimitBusy, RateLimitError, StripeError
from vsbatch.model.row import Outcome
from vsbatch.model.update import SessionUpdate, parse_update, row_key
from vsbatch.ops import metrics
from vsbatch.store.row_lease import Ended, RowLease, Wait
from vsbatch.stripe.retry import decide
from vsbatch.stripe.session import VerificationSession
from vsbatch.worker.row_endings import (
    error_fields,
    fail,
    finish,
    log,
    next_key,
    read_session,
    resolve_error,
    skip_reason,
    succeed,
)
from vsbatch.worker.row_options import (
    BUSY_DELAY,
    MAX_KEY_GENERATIONS,
    ORDER_DELAY,
    ChunkResult,
    Later,
    RowOptions,
)

__all__ = ["process_chunk", "process_row"]


def process_chunk(
    deps: Deps,
    batch_id: str,
    rows: Sequence[int],
    *,
    options: RowOptions,
    budget: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    stop: Callable[[], bool] = lambda: False,
) -> ChunkResult:
    """Process rows in order until done, until ``budget`` seconds have passed, or until
    ``stop()`` says the worker is shutting down.

    Stopping at the budget keeps every task far shorter than the broker's visibility timeout;
    the caller re-enqueues ``remaining``, and each group of ``later`` after its pause. The
    caller has touched the batch (``Ledger.touch``: it is moving, see ``stage.sweep_stalled``).
    """
    result = ChunkResult()
    started = clock()
    for index, row in enumerate(rows):
        if clock() - started > budget or stop():
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
    claimed = _claim(deps, batch_id, row, options)
    if not isinstance(claimed, RowLease):
        return claimed
    lease = claimed
    try:
        # Fenced: if this worker loses the lock (paused past its heartbeat), none of its
        # writes of the row lands and it sends nothing more (see ``locks``).
        with deps.ledger.fenced(lease.fence):
            return _apply(deps, lease, options, sleep)
    except LockLostError:
        log.warning("row %s of %s: session lock lost, row given back", row, batch_id)
        lease.open = False  # the lock is another worker's now: never delete it
        return Later(BUSY_DELAY)
    except RateLimitBusy as busy:
        # The account's rate is booked far ahead: come back when a slot is near.
        return Later(max(BUSY_DELAY, busy.retry_after))
    finally:
        lease.release()


def _claim(
    deps: Deps,
    batch_id: str,
    row: int,
    options: RowOptions,
) -> RowLease | Outcome | Later:
    """Claim the row, waiting up to ``options.lock_wait`` while another worker holds its
    session (the locks' rhythm); an outcome when the row is (now) terminal, ``Later`` when
    it must wait."""
    for _ in deps.locks.waits(options.lock_wait):
        claimed = deps.leases.claim(batch_id, row, read_first=options.read_first)
        if isinstance(claimed, RowLease):
            return claimed
        if isinstance(claimed, Ended):
            if claimed.record is not None:
                _ended_at_claim(claimed)
            return claimed.outcome
        if isinstance(claimed, Wait):
            return Later(ORDER_DELAY if claimed.older is not Outcome.RETRYING else BUSY_DELAY)
    # Another update holds the session: the row stays in flight and comes back soon.
    return Later(BUSY_DELAY)


def _ended_at_claim(ended: Ended) -> None:
    """Log and count a row the claim ended (canceled batch, superseded, no update)."""
    record = ended.record
    assert record is not None
    metrics.observe_row(ended.outcome.value, record.reason, record.account)
    log.info(
        "row %s",
        ended.outcome.value,
        extra={
            "batch": record.batch_id,
            "row": record.row,
            "session": record.session_id,
            "outcome": ended.outcome.value,
            "reason": record.reason,
            "attempts": record.attempts,
            "request_id": None,
        },
    )


def _apply(
    deps: Deps, lease: RowLease, options: RowOptions, sleep: Callable[[float], None]
) -> Outcome | Later:
    """The part of a row's work done while holding its session's lock."""
    record = lease.record
    assert record.params is not None  # claim_row ends a row without an update
    update = parse_update(record.params)
    if lease.canceled:
        # Resent under its key (replayed if it executed); it ends now, never parked.
        options = replace(options, park_hours=0.0)
    if record.outcome is not Outcome.RUNNING:
        # Read first (a row never sent): skip it if the session needs no update.
        early = _read_first(deps, lease, options, update, sleep)
        if early is not None:
            return early
    return _send_until_settled(deps, lease, options, update, sleep)


def _read_first(
    deps: Deps,
    lease: RowLease,
    options: RowOptions,
    update: SessionUpdate,
    sleep: Callable[[float], None],
) -> Outcome | Later | None:
    """Read the session before the first send; an ending when it needs none, else None
    (the row then moves to running)."""
    record = lease.record
    try:
        current = read_session(deps, record, sleep, first_slot=lease.take_slot())
    except StripeError as err:
        return fail(deps, lease, options, err, record.attempts)
    skipped = skip_reason(update, current)
    if skipped is not None:
        reason = skipped.value
        return finish(deps, lease, Outcome.SKIPPED, reason=reason, session_status=current.status)
    deps.ledger.transition(record.batch_id, record.row, Outcome.RUNNING)
    return None


def _send_until_settled(
    deps: Deps,
    lease: RowLease,
    options: RowOptions,
    update: SessionUpdate,
    sleep: Callable[[float], None],
) -> Outcome | Later:
    """Send under the row's key until an answer settles it; a new key only after a finished
    ambiguous answer whose read-back shows the change missing."""
    record = lease.record
    # The update is already parsed: the derived key costs no second parse.
    key = row_key(record.batch_id, record.row, update, record.idempotency_key)
    counter = _Counter(record.attempts, unsettled=record.unsettled)
    for generation in range(1, MAX_KEY_GENERATIONS + 1):
        try:
            session = _send(deps, lease, update, key, counter, sleep)
        except StripeError as err:
            attempts = counter.value
            resolved = resolve_error(
                deps, lease, options, update, err, attempts, sleep, earlier=counter.unsettled
            )
            if resolved is not None:
                return resolved
            # A finished ambiguous answer and a read-back without the change: new key, again.
            key = next_key(key, generation + 1)
            counter.unsettled = False  # a new key has no attempt in flight
            deps.ledger.transition(
                record.batch_id,
                record.row,
                Outcome.RETRYING,
                idempotency_key=key,
                attempts=attempts,
                unsettled=False,
                **error_fields(err),
            )
            continue
        return succeed(deps, lease, session, counter.value)
    message = "change still missing after read-backs"
    return fail(deps, lease, options, None, counter.value, message=message)


@dataclass
class _Counter:
    """Attempts made for one row, across keys (stored in the ledger as ``attempts``), and
    whether one of the current key's attempts, in this round or an earlier one (the row's
    ``unsettled``), ended unknown: it may still land later."""

    value: int
    unsettled: bool = False


def _send(
    deps: Deps,
    lease: RowLease,
    update: SessionUpdate,
    key: str,
    counter: _Counter,
    sleep: Callable[[float], None],
) -> VerificationSession:
    """Send the update with bounded retries under one key, counting attempts in ``counter``."""
    client = deps.stripe()
    record = lease.record
    form = update.to_form()

    def attempt() -> VerificationSession:
        counter.value += 1
        _take_slot(deps, lease)
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
        fields = error_fields(error) if isinstance(error, StripeError) else {}
        metrics.observe_retry(decide(error).reason if error else "internal", record.account)
        deps.ledger.transition(
            record.batch_id,
            record.row,
            Outcome.RETRYING,
            attempts=counter.value,
            unsettled=counter.unsettled,
            **fields,
        )
        # The pause before the next attempt must not outlive the lock.
        deps.locks.extend(record.account, record.session_id, lease.token)

    with metrics.in_flight(record.account):
        return deps.policy.retrying(sleep=sleep, before_sleep=before_sleep)(attempt)


def _take_slot(deps: Deps, lease: RowLease) -> None:
    """Wait for the account's rate slot; the fence, as late as possible before the request.

    The Redis limiter checks the lock (and resets its TTL) in the same step as the slot (the
    claim's slot, under the lock the claim took); a worker paused while it waited for its slot
    confirms again, so a pause at any point before the request is caught.
    """
    record = lease.record
    # The row's first request takes the slot its claim reserved (under the lock it took).
    waited = deps.limiter.wait(record.account, lease.fence, lease.take_slot())
    metrics.observe_limiter_wait(waited, record.account)
    if waited > 0 or not deps.limiter.checks_fence:
        deps.locks.confirm(record.account, record.session_id, lease.token)

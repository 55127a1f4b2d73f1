"""How a claimed row ends: applied, skipped, failed, or back in line under its key.

Every ending goes through :meth:`RowLease.finish` (``finish_row.lua``: the outcome, the
counters, the applied marker and the lock's release in one step), then is logged and counted
here. :func:`resolve_error` turns the last error of a send into an ending: ambiguous answers are
resolved by reading the session back, never by a blind retry under a new key (see
``docs/retries.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from vsbatch.bootstrap import Deps
from vsbatch.errors import IdempotencyError, InvalidRequestError, RateLimitError, StripeError
from vsbatch.model.row import Outcome, RowRecord, SkipReason
from vsbatch.model.update import SessionUpdate
from vsbatch.ops import metrics
from vsbatch.store.rate_limit import Slot
from vsbatch.store.row_lease import RowLease
from vsbatch.stripe.retry import decide
from vsbatch.stripe.session import VerificationSession
from vsbatch.worker.row_options import (
    MAX_PARK_DELAY,
    RATE_LIMIT_ROUNDS,
    UNSETTLED_ROUNDS,
    UPDATABLE_STATUS,
    UPDATE_PARAMS,
    Later,
    RowOptions,
)

log = logging.getLogger("vsbatch.worker.process_row")  # one logger for a row's lines


def resolve_error(
    deps: Deps,
    lease: RowLease,
    options: RowOptions,
    update: SessionUpdate,
    err: StripeError,
    attempts: int,
    sleep: Callable[[float], None],
    *,
    earlier: bool = False,
) -> Outcome | Later | None:
    """Turn the last error into an ending; None means "read back: missing; use a new key".

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
        return fail(deps, lease, options, err, attempts)
    unsettled = not verdict.stored and not status_refusal
    try:
        current = read_session(deps, lease.record, sleep)
    except StripeError:
        return fail(deps, lease, options, err, attempts, retryable=True, unsettled=unsettled)
    if status_refusal:
        if current.status != UPDATABLE_STATUS:
            return finish(
                deps,
                lease,
                Outcome.SKIPPED,
                reason=SkipReason.NOT_UPDATABLE.value,
                session_status=current.status,
                attempts=attempts,
                **error_fields(err),
            )
        return fail(deps, lease, options, err, attempts)
    if update.is_satisfied_by(current.model_dump()):
        # The change took effect although the answer said otherwise (e.g. a stored 500).
        return succeed(deps, lease, current, attempts, reason="confirmed_by_read_back")
    if not verdict.stored:
        # Only a stored 500 proves the request finished. After anything else (a timeout, a
        # dropped connection, 409 "in use", a gateway's 502/504, a 200 that is not our session)
        # Stripe may still be executing it, and a new key could apply it twice. Keep the key: a
        # later retry under it is safe (Stripe replays, says 409 again, or executes it once).
        return fail(deps, lease, options, err, attempts, retryable=True, unsettled=True)
    return None


def read_session(
    deps: Deps,
    record: RowRecord,
    sleep: Callable[[float], None],
    *,
    first_slot: Slot | None = None,
) -> VerificationSession:
    """Retrieve the session, with the same bounded retries and the same rate limiter; the
    first attempt takes ``first_slot`` when given (reserved with the row's claim)."""
    client = deps.stripe()
    slots = [first_slot]

    def attempt() -> VerificationSession:
        waited = deps.limiter.wait(record.account, slot=slots.pop() if slots else None)
        metrics.observe_limiter_wait(waited, record.account)
        return client.retrieve(record.session_id, stripe_account=record.account)

    return deps.policy.retrying(sleep=sleep)(attempt)


def skip_reason(update: SessionUpdate, session: VerificationSession) -> SkipReason | None:
    """Why a session read before sending needs no update (not updatable, or already so)."""
    if session.status != UPDATABLE_STATUS:
        return SkipReason.NOT_UPDATABLE
    if update.is_satisfied_by(session.model_dump()):
        return SkipReason.UNCHANGED
    return None


def next_key(key: str, generation: int) -> str:
    """The row's idempotency key for a new generation (``~g<n>``), at most 255 characters."""
    base = key.rsplit("~g", 1)[0]
    return f"{base}~g{generation}"[:255]


def error_fields(err: StripeError | None) -> dict[str, Any]:
    """The RowRecord fields that keep an error's wire facts."""
    if err is None:
        return {}
    return {
        "error_type": err.error_type,
        "error_code": err.code,
        "error_message": err.user_message,
        "request_id": err.request_id,
    }


def succeed(
    deps: Deps,
    lease: RowLease,
    session: VerificationSession,
    attempts: int,
    *,
    reason: str | None = None,
) -> Outcome:
    """The update took effect: the row succeeds and the session's applied marker moves."""
    meta = session.last_response
    return finish(
        deps,
        lease,
        Outcome.SUCCEEDED,
        applied=True,
        reason=reason,
        attempts=attempts,
        request_id=meta.request_id if meta else None,
        session_status=session.status,
    )


def fail(
    deps: Deps,
    lease: RowLease,
    options: RowOptions,
    err: StripeError | None,
    attempts: int,
    *,
    retryable: bool | None = None,
    message: str | None = None,
    unsettled: bool = False,
) -> Outcome | Later:
    """Record a failure, or put a retryable one back in line (parked, paced or unsettled)."""
    record = lease.record
    fields = error_fields(err)
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
        finish(
            deps,
            lease,
            Outcome.RETRYING,
            attempts=attempts,
            unsettled=unsettled or record.unsettled,
            **fields,
        )
        cap = min(MAX_PARK_DELAY, deps.settings.visibility_timeout / 2)
        return Later(min(cap, 2.0**rounds))
    return finish(deps, lease, Outcome.FAILED, attempts=attempts, retryable=retryable, **fields)


def finish(
    deps: Deps, lease: RowLease, outcome: Outcome, *, applied: bool = False, **fields: Any
) -> Outcome:
    """End the row as ``outcome`` (and let its lock go); log and count a real move."""
    record = lease.record
    if lease.finish(outcome, applied=applied, **fields):
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
    return outcome

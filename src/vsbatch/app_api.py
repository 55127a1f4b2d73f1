"""The application API: fire one update from application code and (optionally) await it.

This module owns :func:`enqueue_update`, :class:`UpdateHandle` and the caller-key
deduplication. Each call becomes a one-row ledger batch of kind ``app`` (so ``status`` and
``report`` show it) whose row is processed with ``RowOptions(park_hours=23)``: an outage
longer than the in-task retry window parks the row (RETRYING, re-enqueued with a growing
pause, same idempotency key) instead of failing it. Per session, updates apply in submission
order: the ledger keeps each session's unfinished rows in seq order and a row is only sent
when it is the oldest (see ``docs/app-api.md``).

Settings come from the environment and dependencies are built once per process, lazily and
thread-safely, by :func:`vsbatch.worker.celery_app.current_deps`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from vsbatch.errors import InvalidRequestError, InvalidUpdate, UpdateTimeout
from vsbatch.intake.stage import open_and_enqueue
from vsbatch.model.row import NewRow, RowRecord
from vsbatch.model.update import SessionUpdate, parse_update
from vsbatch.model.update_rules import is_account_id
from vsbatch.store.ledger import Ledger
from vsbatch.stripe.session import validate_session_id
from vsbatch.worker.row_options import RowOptions

if TYPE_CHECKING:
    from vsbatch.bootstrap import Deps
    from vsbatch.intake.stage import Enqueue

__all__ = ["APP_PARK_HOURS", "UpdateHandle", "enqueue_update", "get_update", "submit_update"]

# Stripe keeps idempotency keys at least 24 hours: a parked row must be sent (or fail) before
# its key could be forgotten, so parking stops an hour short of that.
APP_PARK_HOURS = 23.0
ROW = 1  # the one row of an application batch
_MAX_KEY = 200


@dataclass(frozen=True)
class UpdateHandle:
    """A reference to one enqueued update: ``batch_id`` and ``row`` in the ledger.

    ``id`` (``"<batch_id>:<row>"``) can be stored and turned back into a handle with
    :func:`get_update`.
    """

    batch_id: str
    row: int
    ledger: Ledger = field(repr=False, compare=False)

    @property
    def id(self) -> str:
        """``"<batch_id>:<row>"``."""
        return f"{self.batch_id}:{self.row}"

    def outcome(self) -> RowRecord:
        """The update's ledger record now (``.outcome``, ``.reason``, ``.error_message`` ...).

        Raises:
            NotFoundError: the record expired (older than the ledger's retention).
        """
        return self.ledger.get_row(self.batch_id, self.row)

    def done(self) -> bool:
        """True once the update has its final outcome."""
        return self.outcome().is_terminal

    def wait(
        self,
        timeout: float,
        *,
        poll: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> RowRecord:
        """Wait up to ``timeout`` seconds for the final outcome and return the record.

        Raises:
            UpdateTimeout: still in flight after ``timeout`` (the update is not lost).
        """
        deadline = clock() + timeout
        while True:
            record = self.outcome()
            if record.is_terminal:
                return record
            left = deadline - clock()
            if left <= 0:
                raise UpdateTimeout(self.batch_id, self.row, record.outcome.value, timeout)
            sleep(min(poll, left))


def enqueue_update(
    session_id: str,
    update: SessionUpdate | Mapping[str, Any],
    *,
    account: str | None = None,
    key: str | None = None,
) -> UpdateHandle:
    """Enqueue one update of one VerificationSession and return at once.

    Args:
        session_id: The session, ``vs_...``.
        update: A :class:`SessionUpdate`, or a Stripe-shaped dict such as
            ``{"metadata": {"tier": "gold"}}`` (checked at once with ``parse_update``).
        account: A connected account (``Stripe-Account``), or None for the platform.
        key: Optional deduplication key: a second call with the same key (within the
            ledger's retention) enqueues nothing and returns a handle on the first update.

    Returns:
        A handle to report or await the outcome.

    Raises:
        InvalidUpdate: the update, session id, account or key is not valid (nothing enqueued).
        ConfigError: settings are missing (e.g. ``VSBATCH_REDIS_URL``).
    """
    parsed = _validated(session_id, update, account, key)
    from vsbatch.worker.celery_app import current_deps
    from vsbatch.worker.tasks import enqueue_chunk

    deps = current_deps()
    return submit_update(deps, session_id, parsed, enqueue_chunk, account=account, key=key)


def get_update(update_id: str) -> UpdateHandle:
    """A handle from a stored ``UpdateHandle.id``.

    Raises:
        InvalidUpdate: the id is not ``"<batch_id>:<row>"``.
    """
    from vsbatch.worker.celery_app import current_deps

    return _handle(current_deps().ledger, update_id)


def submit_update(
    deps: Deps,
    session_id: str,
    update: SessionUpdate | Mapping[str, Any],
    enqueue: Enqueue,
    *,
    account: str | None = None,
    key: str | None = None,
) -> UpdateHandle:
    """:func:`enqueue_update` with explicit dependencies (what it calls; tests call it too)."""
    parsed = _validated(session_id, update, account, key)
    ledger = deps.ledger
    key_name = ledger.keys.app_key(key) if key is not None else None
    if key_name is not None:
        existing = deps.redis.get(key_name)
        if existing is not None:
            return _handle(ledger, existing)
    batch = ledger.create_batch(
        name=f"app update {session_id}", kind="app", source=key or session_id, account=account
    )
    new = NewRow(
        row=ROW,
        session_id=session_id,
        account=account,
        params=parsed.to_params(),
    )
    ledger.add_rows(batch.id, [new])
    if key_name is not None:
        ttl = max(1, int(deps.settings.ledger_retention_days * 86400))
        if not deps.redis.set(key_name, f"{batch.id}:{ROW}", nx=True, ex=ttl):
            # Another caller with the same key won the race: theirs is the update.
            ledger.discard_batch(batch.id)
            return _handle(ledger, cast(bytes | str, deps.redis.get(key_name)))
    open_and_enqueue(deps, batch.id, enqueue, RowOptions(park_hours=APP_PARK_HOURS))
    return UpdateHandle(batch.id, ROW, ledger)


def _validated(
    session_id: str,
    update: SessionUpdate | Mapping[str, Any],
    account: str | None,
    key: str | None,
) -> SessionUpdate:
    """The checked update; InvalidUpdate for a bad update, session id, account or key."""
    parsed = update if isinstance(update, SessionUpdate) else parse_update(update)
    try:
        validate_session_id(session_id)
    except InvalidRequestError as exc:
        raise InvalidUpdate(exc.user_message, field="id") from None
    if account is not None and not is_account_id(account):
        raise InvalidUpdate(f"account {account!r} must look like acct_123", field="account")
    if key is not None and not (isinstance(key, str) and 0 < len(key) <= _MAX_KEY):
        raise InvalidUpdate(f"key must be 1 to {_MAX_KEY} characters", field="key")
    return parsed


def _handle(ledger: Ledger, value: bytes | str) -> UpdateHandle:
    text = value.decode() if isinstance(value, bytes) else value
    batch_id, _, row = text.rpartition(":")
    if not batch_id or not row.isdigit():
        raise InvalidUpdate(f"{text!r} is not an update id", field="id")
    return UpdateHandle(batch_id, int(row), ledger)

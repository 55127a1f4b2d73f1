"""A row's life in the store: two scripts, ``claim_row.lua`` and ``finish_row.lua``.

A worker claims a row (:meth:`RowLeases.claim`): in one round trip the script checks the row's
outcome and its batch's state, the session's order (per-session FIFO), takes the session's
lock with the worker's token, checks that no newer update of the session was applied, and
moves the row to running. The worker then sends, and ends the row (:meth:`RowLease.finish`):
in one round trip the outcome, the counters, the session's applied marker and the lock's
release, fenced by the token. Everything else per row (a retry's bookkeeping, a new key) is
off the plain path, through ``Ledger.transition``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import redis

from vsbatch.errors import LockLostError
from vsbatch.model.row import Outcome, RowRecord
from vsbatch.store.codec import (
    ERROR_FIELDS,
    PATCHABLE,
    ROW_KEYS,
    as_text,
    decode_row,
    script_error,
    stored_form,
)
from vsbatch.store.locks import Fence
from vsbatch.store.scripts import lua_script
from vsbatch.store.thread_clients import ThreadClients

if TYPE_CHECKING:
    from vsbatch.store.ledger import Ledger
    from vsbatch.store.locks import SessionLocks
    from vsbatch.store.rate_limit import RedisRateLimiter, Slot

__all__ = ["Busy", "Claimed", "Ended", "RowLease", "RowLeases", "Wait"]


@dataclass(frozen=True)
class Wait:
    """An older update of the row's session is still in flight (its outcome)."""

    older: Outcome


@dataclass(frozen=True)
class Ended:
    """The row is terminal: ``record`` is set when this claim ended it (``None``: it already
    was), with the reason (canceled batch, superseded, no update)."""

    outcome: Outcome
    record: RowRecord | None = None


@dataclass(frozen=True)
class Busy:
    """Another worker holds the session's lock."""


@dataclass
class RowLease:
    """A claimed row: its record as claimed, the lock's token, and how to end it."""

    leases: RowLeases
    record: RowRecord
    token: str
    canceled: bool  # the batch was canceled (a row that may have been sent goes on)
    open: bool = field(default=True)
    slot: Slot | None = None  # the first request's rate slot, reserved with the claim

    def take_slot(self) -> Slot | None:
        """The rate slot the claim reserved, for the row's first request only (then None)."""
        slot, self.slot = self.slot, None
        return slot

    @property
    def fence(self) -> Fence:
        """The fence of this lease's lock (for ``Ledger.fenced`` and the limiter)."""
        return self.leases.locks.fence(self.record.account, self.record.session_id, self.token)

    def finish(self, outcome: Outcome, *, applied: bool = False, **fields: Any) -> bool:
        """End the row as ``outcome`` (terminal, or RETRYING to come back) and let the lock go.

        Args:
            outcome: Where the row goes.
            applied: The update took effect: mark it applied to the session (keeps the max).
            fields: RowRecord fields to set (a field set to its default is removed).

        Returns:
            True when the row was written; False when it was already terminal.

        Raises:
            LockLostError: The lock no longer holds this lease's token; nothing was written.
        """
        self.open = False
        return self.leases.finish(self, outcome, applied=applied, **fields)

    def release(self) -> None:
        """Let the lock go without writing the row (a row ended elsewhere, an error)."""
        if self.open:
            self.open = False
            record = self.record
            self.leases.locks.release(record.account, record.session_id, self.token)


Claimed = RowLease | Ended | Wait | Busy


class RowLeases:
    """Claims and ends rows with the two scripts, on the ledger's and the locks' keys."""

    def __init__(
        self,
        ledger: Ledger,
        locks: SessionLocks,
        limiter: RedisRateLimiter | None = None,
        *,
        thread_clients: int = 256,
    ) -> None:
        self.ledger = ledger
        self.locks = locks
        self.limiter = limiter  # when set, a claim also takes the row's first rate slot
        client: redis.Redis = ledger.client
        self._claim = client.register_script(lua_script("claim_row.lua"))
        self._finish = client.register_script(lua_script("finish_row.lua"))
        self._clients = ThreadClients(client, thread_clients)  # see thread_clients.py

    def claim(self, batch_id: str, row: int, *, read_first: bool = False) -> Claimed:
        """Claim one row (see the module docstring and ``claim_row.lua``).

        Returns:
            A :class:`RowLease` to work on; :class:`Ended` when the row is terminal; a
            :class:`Wait` for an older update of the session; :class:`Busy` when another
            worker holds the session's lock.

        Raises:
            NotFoundError: The batch has no such row.
        """
        ledger, keys = self.ledger, self.ledger.keys
        token = self.locks.new_token()
        args: list[str | int] = [
            str(row),
            repr(ledger.now()),
            ledger.retention_seconds,
            ledger.events_maxlen,
            keys.pending_prefix,
            batch_id,
            keys.prefix,
            token,
            max(1, int(self.locks.ttl * 1000)),
            "1" if read_first else "0",
        ]
        if self.limiter is not None:
            args += self.limiter.slot_script_args() or []
        try:
            reply = cast(
                list[Any],
                self._claim(
                    keys=keys.row_script_keys(batch_id), args=args, client=self._clients.get()
                ),
            )
        except redis.ResponseError as exc:
            raise script_error(exc, batch_id) from None
        return self._claimed(batch_id, row, token, reply)

    def _claimed(self, batch_id: str, row: int, token: str, reply: list[Any]) -> Claimed:
        """What ``claim_row.lua``'s reply says (see :meth:`claim`)."""
        kind = as_text(reply[0])
        if kind == "done":
            ended = reply[3] and decode_row(batch_id, row, reply[3])
            return Ended(Outcome(as_text(reply[1])), ended or None)
        if kind == "later":
            return Wait(Outcome(as_text(reply[1])))
        if kind == "busy":
            return Busy()
        record = decode_row(batch_id, row, reply[1])
        lease = RowLease(self, record, token, canceled=as_text(reply[2]) == "1")
        if self.limiter is not None and len(reply) > 3:  # the claim took a slot too
            lease.slot = self.limiter.adopt(record.account, reply[3:7])
        return lease

    def finish(self, lease: RowLease, outcome: Outcome, *, applied: bool, **fields: Any) -> bool:
        """Write the row's ending and release its lock (see :meth:`RowLease.finish`)."""
        unknown = set(fields) - PATCHABLE
        if unknown:
            raise TypeError(f"finish cannot set {sorted(unknown)}")
        if Outcome(outcome) is Outcome.SUCCEEDED:
            fields = {**dict.fromkeys(ERROR_FIELDS), **fields}  # an applied row has no error
        patch = {ROW_KEYS[k]: stored_form(k, v) for k, v in fields.items()}
        ledger, keys, record = self.ledger, self.ledger.keys, lease.record
        row_keys = [
            *keys.row_script_keys(record.batch_id),
            keys.lock(record.account, record.session_id),
            keys.applied(record.account, record.session_id),
            keys.failed(record.account, record.session_id),
        ]
        args: list[str | int] = [
            str(record.row),
            Outcome(outcome).value,
            json.dumps(patch, separators=(",", ":"), ensure_ascii=False),
            repr(ledger.now()),
            ledger.retention_seconds,
            ledger.events_maxlen,
            keys.pending_prefix,
            record.batch_id,
            lease.token,
            str(record.place_in_line) if applied else "",
            keys.prefix,
        ]
        try:
            written = int(
                cast(int, self._finish(keys=row_keys, args=args, client=self._clients.get()))
            )
        except redis.ResponseError as exc:
            raise script_error(exc, record.batch_id) from None
        if written < 0:
            raise LockLostError(
                f"row {record.row} of batch {record.batch_id}: its session's lock was lost"
            )
        return bool(written)

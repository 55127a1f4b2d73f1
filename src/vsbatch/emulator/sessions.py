"""The emulator's VerificationSessions: their objects, their store and their status moves.

This module owns :class:`Session` (a session's JSON object plus the emulator's bookkeeping),
:class:`SessionStore` (sessions by id and each account's sessions in creation order, with
Stripe-shaped ids drawn from a seeded generator, and the pages of a list), and the moves that
are the same for every route: :func:`cancel` and redaction. Like the rest of the state it
runs on the server's event loop thread; the per-session :class:`asyncio.Lock` only serialises
writes across ``await`` points.

Redaction follows Stripe's redact reference: the answer to redact already has the metadata
erased and ``redaction.status`` ``processing`` (a ``requires_input`` session is canceled); when
the process is over (Stripe: up to four days; here ``redaction_seconds``, checked lazily on the
store's wall clock whenever the session is read) the status is ``redacted`` and the personal
data reads ``[redacted]``: the provided details, the verified outputs (dates: null), and the
client reference id, which the emulator nulls (its own reading).
"""

from __future__ import annotations

import asyncio
import random
import string
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PLACEHOLDER",
    "STATUSES",
    "Session",
    "SessionStore",
    "blank",
    "cancel",
    "finish_redaction",
    "start_redaction",
]

STATUSES = ("requires_input", "processing", "verified", "canceled")
PLACEHOLDER = "[redacted]"
"""What Stripe puts in place of redacted personal data."""
_NOT_PERSONAL = frozenset({"status", "type", "id_number_type", "error"})
_BASE62 = string.digits + string.ascii_letters


@dataclass(slots=True, eq=False)
class Session:
    """One VerificationSession: its JSON object plus the emulator's bookkeeping."""

    obj: dict[str, Any]
    account: str
    pos: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    redaction_due: float | None = None  # wall-clock time a processing redaction completes

    @property
    def id(self) -> str:
        """The session's ``vs_`` id."""
        return str(self.obj["id"])


def _token(rng: random.Random, length: int) -> str:
    return "".join(rng.choices(_BASE62, k=length))


class SessionStore:
    """Sessions by id, plus each account's sessions in creation order (for listing)."""

    def __init__(self, rng: random.Random, wall_clock: Callable[[], float] = time.time) -> None:
        self._rng = rng
        self._wall_clock = wall_clock
        self._by_id: dict[str, Session] = {}
        self._order: dict[str, list[Session]] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._by_id

    def __iter__(self) -> Iterator[Session]:
        """Every session of every account, in creation order."""
        return iter([self._settled(session) for session in self._by_id.values()])

    def get(self, account: str, session_id: str) -> Session | None:
        """The session with this id if it belongs to the account, else None."""
        session = self._by_id.get(session_id)
        if session is None or session.account != account:
            return None
        return self._settled(session)

    def redact(self, session: Session, delay: float) -> None:
        """Start redacting ``session``; it completes ``delay`` seconds from now."""
        start_redaction(session, self._wall_clock() + delay)

    def _settled(self, session: Session) -> Session:
        """The session, its redaction completed if it is due (read time is when it shows)."""
        due = session.redaction_due
        if due is not None and self._wall_clock() >= due:
            finish_redaction(session)
        return session

    def new_id(self) -> str:
        """A fresh id: ``vs_`` and 24 base62 characters (drawn from the seeded id generator)."""
        while True:
            candidate = "vs_" + _token(self._rng, 24)
            if candidate not in self._by_id:
                return candidate

    def create(
        self,
        account: str,
        *,
        session_id: str | None = None,
        status: str = "requires_input",
        type: str = "document",
        metadata: dict[str, str] | None = None,
        options: dict[str, Any] | None = None,
        provided_details: dict[str, str] | None = None,
        created: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Session:
        """Store a new session and return it.

        Raises:
            ValueError: ``session_id`` is already taken.
        """
        sid = session_id or self.new_id()
        if sid in self._by_id:
            raise ValueError(f"session id already exists: {sid}")
        open_ = status == "requires_input"
        obj: dict[str, Any] = {
            "id": sid,
            "object": "identity.verification_session",
            "client_reference_id": None,
            "client_secret": f"{sid}_secret_{_token(self._rng, 24)}" if open_ else None,
            "created": int(self._wall_clock()) if created is None else created,
            "last_error": None,
            "last_verification_report": (
                "vr_" + _token(self._rng, 24) if status == "verified" else None
            ),
            "livemode": False,
            "metadata": dict(metadata or {}),
            "options": dict(options or {}),
            "provided_details": dict(provided_details) if provided_details else None,
            "redaction": None,
            "related_customer": None,
            "related_customer_account": None,
            "status": status,
            "type": type,
            "url": f"https://verify.stripe.com/start/test_{_token(self._rng, 32)}"
            if open_
            else None,
            "verified_outputs": None,
        }
        if extra:
            obj.update(extra)
        order = self._order.setdefault(account, [])
        session = Session(obj=obj, account=account, pos=len(order))
        order.append(session)
        self._by_id[sid] = session
        return session

    def page(
        self,
        account: str,
        *,
        limit: int,
        starting_after: str | None = None,
        ending_before: str | None = None,
        match: Callable[[dict[str, Any]], bool] | None = None,
    ) -> tuple[list[Session], bool]:
        """One page of the account's sessions, newest first, and whether more follow.

        Raises:
            LookupError: The cursor names no session of this account.
        """
        order = self._order.get(account, [])
        cursor_id = starting_after or ending_before
        step = -1
        index = len(order) - 1
        if cursor_id is not None:
            cursor = self.get(account, cursor_id)
            if cursor is None:
                raise LookupError(cursor_id)
            step = -1 if starting_after else 1
            index = cursor.pos + step
        found: list[Session] = []
        while 0 <= index < len(order) and len(found) <= limit:
            candidate = self._settled(order[index])
            if match is None or match(candidate.obj):
                found.append(candidate)
            index += step
        has_more = len(found) > limit
        found = found[:limit]
        if step == 1:
            found.reverse()
        return found, has_more


def cancel(session: Session) -> None:
    """Move a session to ``canceled`` (its client secret and URL stop working)."""
    session.obj.update(status="canceled", client_secret=None, url=None)


def start_redaction(session: Session, due: float) -> None:
    """Redaction begins: metadata erased, status ``processing`` until ``due``; a requires_input
    session is canceled. Redacting again changes nothing."""
    obj = session.obj
    if obj["redaction"] is not None:
        return
    if obj["status"] == "requires_input":
        cancel(session)
    obj.update(redaction={"status": "processing"}, metadata={})
    session.redaction_due = due


def finish_redaction(session: Session) -> None:
    """Redaction completes: status ``redacted``, personal data replaced by placeholders."""
    obj = session.obj
    details = obj["provided_details"]
    outputs = obj["verified_outputs"]
    obj.update(
        redaction={"status": "redacted"},
        metadata={},
        client_reference_id=None,
        provided_details=blank(details) if details else details,
        verified_outputs=blank(outputs) if outputs else outputs,
    )
    session.redaction_due = None


def blank(data: dict[str, Any]) -> dict[str, Any]:
    """Personal data replaced: strings by ``[redacted]``, an address part by part, dates (and
    other objects) by null, files by none; statuses, types and errors are kept."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in _NOT_PERSONAL or value is None:
            out[key] = value
        elif key == "address" and isinstance(value, dict):
            out[key] = {part: PLACEHOLDER for part in value}
        elif isinstance(value, list):
            out[key] = []
        elif isinstance(value, dict):
            out[key] = None
        else:
            out[key] = PLACEHOLDER
    return out

"""The emulator's state in plain Python: one world of sessions, keys, the limiter and stats.

This module owns :class:`World` (everything a reset throws away, and the admin seeding of
sessions from a :class:`SeedRequest`), :class:`Emulator` (the in-process handle that swaps in a
new world on reset), the idempotency store, the rate limiter and the stats; the sessions
themselves live in :mod:`vsbatch.emulator.sessions`. Everything here runs on the server's event
loop thread, so no thread locks are needed. A reset swaps in a new :class:`World`, so a request
still sleeping from before the reset writes to the old world and never leaks into the next
test's stats.
"""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vsbatch.emulator.config import EmulatorConfig
from vsbatch.emulator.faults import FaultPlan
from vsbatch.emulator.sessions import SessionStore, finish_redaction, start_redaction

__all__ = [
    "PLATFORM",
    "Emulator",
    "IdempotencyEntry",
    "IdempotencyStore",
    "RateLimiter",
    "SeedRequest",
    "Stats",
    "World",
]

PLATFORM = ""
"""Account key of requests without a ``Stripe-Account`` header."""

Clock = Callable[[], float]


class SeedRequest(BaseModel):
    """Body of ``POST /_emulator/sessions``: sessions to create directly, in any status."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=1, ge=0, le=1_000_000)
    status: Literal["requires_input", "processing", "verified", "canceled"] = "requires_input"
    metadata: dict[str, str] = Field(default_factory=dict)
    type: Literal["document", "id_number"] = "document"
    account: str | None = None
    ids: list[str] | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    provided_details: dict[str, str] | None = None
    redacted: bool = False
    created: int | None = None


@dataclass(slots=True)
class IdempotencyEntry:
    """A key's first request: its parameters, its request id and, once finished, the response."""

    fingerprint: tuple[Any, ...]
    created: float
    request_id: str = ""
    done: bool = False
    status: int = 0
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class IdempotencyStore:
    """Idempotency keys per (account, key), kept ``ttl`` seconds (monotonic clock)."""

    def __init__(self, ttl: float, clock: Clock = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[tuple[str, str], IdempotencyEntry] = {}

    def get(self, account: str, key: str) -> IdempotencyEntry | None:
        """The live entry for the key, or None (an expired entry is pruned)."""
        entry = self._entries.get((account, key))
        if entry is not None and self._clock() - entry.created > self.ttl:
            del self._entries[(account, key)]
            return None
        return entry

    def claim(
        self, account: str, key: str, fingerprint: tuple[Any, ...], request_id: str = ""
    ) -> IdempotencyEntry:
        """Mark the key as executing for the request ``request_id`` with these parameters."""
        entry = IdempotencyEntry(fingerprint, self._clock(), request_id)
        self._entries[(account, key)] = entry
        return entry

    def release(self, account: str, key: str, entry: IdempotencyEntry) -> None:
        """Forget an unfinished claim (nothing is stored for requests refused mid-way)."""
        if self._entries.get((account, key)) is entry and not entry.done:
            del self._entries[(account, key)]


class RateLimiter:
    """Sliding-window log: at most ``limit`` admitted requests per account per ``window`` s."""

    def __init__(self, limit: float, window: float = 1.0, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._log: dict[str, deque[float]] = {}

    def allow(self, account: str) -> bool:
        """Admit and record one request, or say it is over the limit (a limit of 0 is off)."""
        if self.limit <= 0:
            return True
        now = self._clock()
        log = self._log.get(account)
        if log is None:
            log = self._log[account] = deque()
        horizon = now - self.window
        while log and log[0] <= horizon:
            log.popleft()
        if len(log) >= self.limit:
            return False
        log.append(now)
        return True


@dataclass
class Stats:
    """Counters served by ``GET /_emulator/stats``."""

    applied: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    updates: int = 0
    rate_limited: int = 0
    lock_timeouts: int = 0
    replayed: int = 0
    idempotency_conflicts: int = 0
    idempotency_mismatches: int = 0
    dropped: int = 0
    gateway_pending: int = 0  # requests Stripe will still execute behind a gateway's answer

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return {
            "applied": dict(self.applied),
            "applied_total": sum(self.applied.values()),
            "requests": dict(self.requests),
            "faults": dict(self.faults),
            "updates": self.updates,
            "rate_limited": self.rate_limited,
            "lock_timeouts": self.lock_timeouts,
            "replayed": self.replayed,
            "idempotency_conflicts": self.idempotency_conflicts,
            "idempotency_mismatches": self.idempotency_mismatches,
            "dropped": self.dropped,
            "gateway_pending": self.gateway_pending,
        }


class World:
    """Everything a reset throws away: sessions, keys, limiter, stats and fault counters.

    ``accounts`` are the connected accounts the key may act on with ``Stripe-Account``: the
    platform, and every account a seeding request named (``count=0`` connects one with no
    sessions). Any other account is Stripe's 403 ``account_invalid``.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.accounts: set[str] = {PLATFORM}
        self.sessions = SessionStore(random.Random(f"ids:{config.seed}"))
        self.idempotency = IdempotencyStore(config.idempotency_ttl_seconds)
        self.limiter = RateLimiter(config.rate_limit, config.rate_window_seconds)
        self.stats = Stats()
        self.faults = FaultPlan(config)

    def configure(self, config: EmulatorConfig) -> None:
        """Apply a new config to this world, keeping its sessions, keys and counters."""
        self.config = config
        self.idempotency.ttl = config.idempotency_ttl_seconds
        self.limiter.limit = config.rate_limit
        self.limiter.window = config.rate_window_seconds
        self.faults.config = config

    def seed(self, request: SeedRequest) -> list[str]:
        """Create sessions directly (the admin seeding route) and return their ids.

        Raises:
            ValueError: An explicit id is taken, repeated or malformed (``ids`` wins over
                ``count``).
        """
        account = request.account or PLATFORM
        self.accounts.add(account)
        ids: list[str | None] = [None] * request.count
        if request.ids is not None:
            ids = list(request.ids)
            if len(set(ids)) != len(ids):
                raise ValueError("ids must be distinct")
        for sid in ids:
            if sid is not None and (not sid.startswith("vs_") or sid in self.sessions):
                raise ValueError(f"invalid or existing session id: {sid}")
        created: list[str] = []
        for sid in ids:
            session = self.sessions.create(
                account,
                session_id=sid,
                status=request.status,
                type=request.type,
                metadata=request.metadata,
                options=request.options,
                provided_details=request.provided_details,
                created=request.created,
            )
            if request.redacted:  # seeded redacted: the process is over
                start_redaction(session, due=0.0)
                finish_redaction(session)
            created.append(session.id)
        return created


class Emulator:
    """The in-process handle: current world, start-up config and start-up sessions.

    Args:
        config: Start-up config.
        sessions: ``requires_input`` sessions created at start-up and after every reset.
        seeds: Further seeding requests (explicit ids, say) replayed after ``sessions``.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        sessions: int = 0,
        seeds: Sequence[SeedRequest] = (),
    ) -> None:
        self.startup_config = config or EmulatorConfig()
        self.startup_seeds = [SeedRequest(count=sessions), *seeds] if sessions else [*seeds]
        self.world = self._fresh(self.startup_config)

    def _fresh(self, config: EmulatorConfig) -> World:
        world = World(config)
        for request in self.startup_seeds:
            world.seed(request)
        return world

    @property
    def config(self) -> EmulatorConfig:
        """The config in force."""
        return self.world.config

    def reset(self, config: EmulatorConfig | None = None) -> None:
        """Start a new world: start-up sessions, no keys, zero stats, given or start-up config."""
        self.world = self._fresh(config or self.startup_config)

    def configure(self, **fields: Any) -> EmulatorConfig:
        """Change some config fields now and return the new config.

        Raises:
            pydantic.ValidationError: An unknown field or a value out of range.
        """
        merged = {**self.world.config.model_dump(), **fields}
        config = EmulatorConfig.model_validate(merged)
        self.world.configure(config)
        return config

    def seed(self, **fields: Any) -> list[str]:
        """Create sessions directly; the fields are those of :class:`SeedRequest`."""
        return self.world.seed(SeedRequest.model_validate(fields))

    def stats(self) -> dict[str, Any]:
        """A JSON-ready copy of the current stats."""
        return self.world.stats.as_dict()

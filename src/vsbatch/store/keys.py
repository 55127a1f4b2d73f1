"""Every Redis key vsbatch writes, named in one place (``Keys``), under one namespace prefix.

Layout (all keys under ``<prefix>:``, default prefix ``vsbatch``, ``VSBATCH_KEY_PREFIX``;
names live in ``Keys``; ``{bid}`` and the like below are placeholders, not hash tags):

- ``b:{bid}``          hash: the batch's fields (id, name, kind, source, digest, account,
                        created_at, finished_at, state, total, parent_id, min_row, max_row)
- ``b:{bid}:counts``   hash: outcome -> number of rows in it (moves only on real transitions)
- ``b:{bid}:rows``     hash: row number -> JSON row record (compact; see ``ROW_KEYS``)
- ``b:{bid}:sessions`` hash: "{account}:{session_id}" -> first row number (duplicate detection)
- ``b:{bid}:events``   stream: one entry per transition (history; capped approximately)
- ``batches``          sorted set: batch id by created_at
- ``archiver``         string (expiring): the worker copying finished batches to SQL holds it
- ``seq``              counter: global submission sequence (per-session order); never expires
- ``file:{account}:{digest}``  string: the batch a CSV file's content is claimed by (see
                        ``file_claim``)
- ``applied:{account}:{session_id}``  string: highest ``seq`` applied to that session, kept
                        only where an older update of it may still come (``finish_row.lua``)
- ``failed:{account}:{session_id}``  string: a row of that session failed (a retry of it may
                        come)
- ``pending:{account}:{session_id}``  sorted set: "{bid}:{row}" scored by ``seq``, one per
                        unfinished row of that session (per-session FIFO; see ``older_pending``)
                        in a batch that is not indexed
- ``indexed``          set: ids of indexed batches with unfinished rows (a file's batch: its
                        rows join no pending set; their sessions are found in its sessions
                        hash); never expires, a batch leaves it when it ends or is gone

Redis Cluster: scripts touch keys of a batch, of its sessions and of workers' heartbeats
together, some built inside Lua, so every key must be in one slot: a prefix with a hash tag
(``{vsbatch}``) does that. The default has none, so that existing ledgers keep their names
(docs/redis.md).
"""

from __future__ import annotations

import re


class Keys:
    """The name of every Redis key vsbatch writes, under one namespace prefix."""

    def __init__(self, prefix: str = "vsbatch") -> None:
        self.prefix = prefix

    @property
    def batches(self) -> str:
        """Sorted set of batch ids scored by created_at."""
        return f"{self.prefix}:batches"

    @property
    def seq(self) -> str:
        """The global submission sequence counter."""
        return f"{self.prefix}:seq"

    def batch(self, batch_id: str) -> str:
        """The batch's own hash."""
        return f"{self.prefix}:b:{batch_id}"

    def counts(self, batch_id: str) -> str:
        """Outcome -> number of rows."""
        return f"{self.batch(batch_id)}:counts"

    def rows(self, batch_id: str) -> str:
        """Row number -> compact JSON record."""
        return f"{self.batch(batch_id)}:rows"

    def sessions(self, batch_id: str) -> str:
        """Session key -> first row number, for duplicate detection."""
        return f"{self.batch(batch_id)}:sessions"

    def events(self, batch_id: str) -> str:
        """The batch's transition history (a stream)."""
        return f"{self.batch(batch_id)}:events"

    def batch_keys(self, batch_id: str) -> list[str]:
        """Every key of one batch: batch, counts, rows, sessions, events."""
        return [
            self.batch(batch_id),
            self.counts(batch_id),
            self.rows(batch_id),
            self.sessions(batch_id),
            self.events(batch_id),
        ]

    def row_script_keys(self, batch_id: str) -> list[str]:
        """The keys a script that moves rows of the batch touches, in the scripts' order:
        batch, counts, rows, events, sessions."""
        return [
            self.batch(batch_id),
            self.counts(batch_id),
            self.rows(batch_id),
            self.events(batch_id),
            self.sessions(batch_id),
        ]

    @staticmethod
    def session_field(account: str | None, session_id: str) -> str:
        """A session's identity across accounts: ``"{account or ''}:{session_id}"``."""
        return f"{account or ''}:{session_id}"

    def applied(self, account: str | None, session_id: str) -> str:
        """Highest seq applied to one session."""
        return f"{self.prefix}:applied:{self.session_field(account, session_id)}"

    def failed(self, account: str | None, session_id: str) -> str:
        """Set when a row of the session fails: a retry of it may come later."""
        return f"{self.prefix}:failed:{self.session_field(account, session_id)}"

    @property
    def indexed(self) -> str:
        """The indexed batches: their rows are found by session in their sessions hash."""
        return f"{self.prefix}:indexed"

    @property
    def pending_prefix(self) -> str:
        """Prefix of the per-session pending sets (the Lua scripts append the session key)."""
        return f"{self.prefix}:pending:"

    def pending(self, account: str | None, session_id: str) -> str:
        """The session's unfinished rows: "{bid}:{row}" scored by seq (oldest first)."""
        return self.pending_prefix + self.session_field(account, session_id)

    def migration_tick(self, name: str, tick: int) -> str:
        """Claimed by the one run of migration ``name`` for the scheduled time ``tick``."""
        return f"{self.prefix}:migration:{name}:{tick}"

    def migration_last(self, name: str) -> str:
        """The batch id of migration ``name``'s latest scheduled run."""
        return f"{self.prefix}:migration-last:{name}"

    def app_key(self, key: str) -> str:
        """An application's deduplication key -> "{bid}:{row}" of the update it named."""
        return f"{self.prefix}:appkey:{key}"

    def file_claim(self, account: str | None, digest: str) -> str:
        """The id of the one staging or open batch of a file's content for one default
        account (``file_claim.claim_file``)."""
        return f"{self.prefix}:file:{account or ''}:{digest}"

    @property
    def rate_prefix(self) -> str:
        """The rate limiters' keys before the account (``claim_row.lua`` ends them as
        :meth:`rate` does)."""
        return f"{self.prefix}:rl:"

    def rate(self, account: str | None) -> str:
        """The rate limiter's state for one Stripe account (None: the platform account)."""
        return f"{self.rate_prefix}{account or 'platform'}"

    def lock(self, account: str | None, session_id: str) -> str:
        """The per-session lock."""
        return f"{self.prefix}:lock:{self.session_field(account, session_id)}"

    def sweep(self, batch_id: str) -> str:
        """Claimed by the one worker resuming a stalled batch (``submit.sweep_stalled``)."""
        return f"{self.batch(batch_id)}:sweep"

    @property
    def archiver(self) -> str:
        """Held (expiring) by the one worker copying finished batches to the results store."""
        return f"{self.prefix}:archiver"

    @property
    def writable(self) -> str:
        """Written (expiring) by ``run`` while it waits, to learn that Redis accepts writes."""
        return f"{self.prefix}:writable"

    @property
    def nodes(self) -> str:
        """Set of worker process ids that hold chunk messages (see ``liveness``)."""
        return f"{self.prefix}:nodes"

    def alive(self, node: str) -> str:
        """A worker process's heartbeat (expires when the process stops beating)."""
        return f"{self.prefix}:alive:{node}"

    def held(self, node: str) -> str:
        """Message id -> chunk (JSON) of every chunk message a worker process holds."""
        return f"{self.prefix}:held:{node}"


# Letters, digits and a few separators; at most one hash tag ("{...}", not empty).
_PREFIX = re.compile(r"[A-Za-z0-9_.:\-]*(\{[A-Za-z0-9_.:\-]+\})?[A-Za-z0-9_.:\-]*")


def check_key_prefix(prefix: str) -> str:
    """``prefix`` when it can name vsbatch's keys (``VSBATCH_KEY_PREFIX``).

    A hash tag (``{vsbatch}``) puts every key in one Redis Cluster slot: then every script's
    keys, declared or built inside Lua, are in the slot of the node that runs it.

    Raises:
        ValueError: Empty, too long, characters other than letters, digits and ``_.:-``, or
            braces that are not one non-empty hash tag.
    """
    prefix = prefix.strip()
    if not prefix or len(prefix) > 64 or not _PREFIX.fullmatch(prefix):
        raise ValueError(
            "use 1 to 64 letters, digits and _.:- with at most one {hash tag}, e.g. vsbatch or"
            " {vsbatch} (Redis Cluster)"
        )
    return prefix

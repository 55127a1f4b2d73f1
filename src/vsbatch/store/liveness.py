"""Worker liveness: which worker processes are alive, and which chunk messages each one holds.

Chunk messages are acknowledged late, so a worker killed while it holds one (running it, or
keeping it for a countdown) gives it back only when the broker's visibility timeout passes
(600 s by default). So each worker process beats (``alive:<node>``, a key that expires after
a few missed beats) and records every chunk message it receives (``held:<node>``) until it
is done with it. A live worker that finds a node whose heartbeat expired takes over that
node's chunks in one Lua script (``lua/reap.lua``: of two reapers, one gets them) and
enqueues them again, so the batch goes on within seconds.

Enqueuing a chunk twice is harmless: final rows are not sent again, and a row in flight
elsewhere waits for its session's lock and is sent under the same idempotency key. A slow
(or paused) worker taken for dead costs time, not correctness: once its locks are taken
over, its sends and ledger writes are fenced (see ``locks``). The original messages still come back
after the visibility timeout, which stays the backstop (a reaper killed between taking over
chunks and enqueuing them, a worker whose Redis went away).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from vsbatch.store.keys import Keys
from vsbatch.store.scripts import lua_script

if TYPE_CHECKING:  # status reads heartbeats through store.resp: no redis-py there
    import redis

    from vsbatch.store.ledger_reader import ReadClient

log = logging.getLogger(__name__)

# A node is dead once this many heartbeat intervals pass without a beat.
MISSED_BEATS = 3


def new_node_id() -> str:
    """A worker process's id: host, pid, and a random part (containers reuse pids)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def live_nodes(client: ReadClient, keys: Keys) -> list[str]:
    """The worker processes whose heartbeat has not expired (sorted)."""
    nodes = sorted(as_text(n) for n in cast(set[bytes], client.smembers(keys.nodes)))
    pipe = client.pipeline(transaction=False)
    for node in nodes:
        pipe.exists(keys.alive(node))
    return [node for node, alive in zip(nodes, pipe.execute(), strict=True) if alive]


def as_text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


@dataclass(frozen=True)
class HeldChunk:
    """A chunk message as the task received it: batch, row numbers, row options."""

    batch_id: str
    rows: list[int]
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Compact JSON, as stored in ``held:<node>``."""
        return json.dumps([self.batch_id, self.rows, self.options], separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> HeldChunk:
        """Inverse of :meth:`to_json`."""
        batch_id, rows, options = json.loads(raw)
        return cls(str(batch_id), [int(r) for r in rows], dict(options or {}))


class Liveness:
    """One worker process's heartbeat and held chunks, and the reaping of dead processes'.

    Args:
        client: A redis-py client.
        keys: The key namespace.
        node: This process's id (see :func:`new_node_id`).
        interval: Seconds between beats; a node is dead after ``MISSED_BEATS`` of them.
        retention: Seconds a held-chunks hash outlives its last write (a dead node that no
            reaper ever saw does not keep its hash forever).
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        node: str,
        *,
        interval: float = 5.0,
        retention: int = 7 * 86400,
    ) -> None:
        self._r = client
        self.keys = keys
        self.node = node
        self.interval = interval
        self._retention = retention
        self._reap = client.register_script(lua_script("reap.lua"))
        self._hold = client.register_script(lua_script("hold.lua"))

    def beat(self) -> None:
        """Say this process is alive for the next ``MISSED_BEATS`` intervals."""
        pipe = self._r.pipeline(transaction=False)
        pipe.set(self.keys.alive(self.node), "1", px=int(self.interval * MISSED_BEATS * 1000))
        pipe.sadd(self.keys.nodes, self.node)
        pipe.expire(self.keys.nodes, self._retention)  # like every key vsbatch writes
        pipe.execute()

    def hold(self, message_id: str, chunk: HeldChunk) -> None:
        """Record that this process holds message ``message_id`` (until :meth:`release`)."""
        keys = [self.keys.held(self.node), self.keys.nodes]
        self._hold(keys=keys, args=[message_id, chunk.to_json(), self._retention, self.node])

    def release(self, message_id: str) -> None:
        """This process is done with message ``message_id``."""
        self._r.hdel(self.keys.held(self.node), message_id)

    def leave(self) -> None:
        """A clean stop: forget this node (its messages went back to the broker)."""
        pipe = self._r.pipeline(transaction=True)
        pipe.delete(self.keys.alive(self.node), self.keys.held(self.node))
        pipe.srem(self.keys.nodes, self.node)
        pipe.execute()

    def reap(self) -> list[HeldChunk]:
        """Take over the chunks of every node whose heartbeat expired (this one excepted)."""
        chunks: list[HeldChunk] = []
        for raw_node in cast(set[bytes], self._r.smembers(self.keys.nodes)):
            node = as_text(raw_node)
            if node == self.node:
                continue
            keys = [self.keys.alive(node), self.keys.held(node), self.keys.nodes]
            taken = cast(list[bytes], self._reap(keys=keys, args=[node]))
            if taken:
                log.warning(
                    "worker %s stopped beating: %d chunk(s) enqueued again", node, len(taken)
                )
            chunks.extend(HeldChunk.from_json(raw) for raw in taken)
        return chunks


class Heartbeat:
    """A daemon thread that beats for this process and re-enqueues dead processes' chunks.

    Args:
        liveness: This process's liveness record.
        enqueue: Sends one chunk again (the task edge's enqueue).
        sweep: Other recovery work (stalled batches), run at most every ``sweep_every``
            seconds, so that an idle fleet reads little.
        sweep_every: Seconds between sweeps.
        clock: Monotonic seconds (injected for tests).
        on_beat: Called after each beat Redis took (the container's health file).
    """

    def __init__(
        self,
        liveness: Liveness,
        enqueue: Callable[[HeldChunk], None],
        sweep: Callable[[], object] | None = None,
        *,
        sweep_every: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        on_beat: Callable[[], None] | None = None,
    ) -> None:
        self.liveness = liveness
        self._on_beat = on_beat
        self._enqueue = enqueue
        self._sweep = sweep
        self._sweep_every = sweep_every
        self._clock = clock
        self._last_sweep = clock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="vsbatch-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        """Beat once now (before any chunk is held), then every interval in the background."""
        self._beat()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating (the node then looks dead once its heartbeat expires)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def run_once(self) -> int:
        """Beat, then re-enqueue the chunks of dead nodes; return how many."""
        self._beat()
        chunks = self.liveness.reap()
        for chunk in chunks:
            self._enqueue(chunk)
        if self._sweep is not None and self._clock() - self._last_sweep >= self._sweep_every:
            self._last_sweep = self._clock()
            self._sweep()
        return len(chunks)

    def _beat(self) -> None:
        self.liveness.beat()
        if self._on_beat is not None:
            self._on_beat()

    def _loop(self) -> None:
        while not self._stop.wait(self.liveness.interval):
            try:
                self.run_once()
            except Exception as exc:  # this thread must outlive any one error
                # Redis (the broker too) away or restarting: the next beat tries again.
                log.warning("heartbeat failed: %s", exc)

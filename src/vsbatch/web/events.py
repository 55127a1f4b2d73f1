"""The live counters the dashboard's pages follow: server-sent events, one message a tick.

Each open stream has its own :class:`LiveFeed`: a :class:`~vsbatch.ops.live_view.LiveReader`
(the open batches' counters, the workers alive, each account's limit: what ``status --watch``
reads) and a :class:`~vsbatch.ops.live_view.RateWindow` (rows/s over its last seconds). The
message is JSON; the page's script writes its numbers into the page as text, never as HTML.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from vsbatch.errors import VsbatchError
from vsbatch.ops.live_view import LiveReader, RateWindow, View
from vsbatch.ops.reports import counts_dict

if TYPE_CHECKING:
    from vsbatch.bootstrap import Deps

__all__ = ["LiveFeed", "counters_stream", "view_dict"]

RECONNECT_MS = 2000  # how soon a browser reconnects a dropped stream


def view_dict(view: View) -> dict[str, Any]:
    """A view of the live reader as the JSON the page reads."""
    snapshot = view.snapshot
    batches = [
        {
            "id": b.id,
            "state": b.state.value,
            "total": b.total,
            "terminal": b.terminal,
            "counts": counts_dict(b),
            "rate": round(view.rates.get(b.id, 0.0), 1),
        }
        for b in snapshot.batches
    ]
    accounts = []
    for label, rate in view.account_rates.items():
        limit = snapshot.limits.get(label)
        accounts.append(
            {
                "account": label,
                "rate": round(rate, 1),
                "limit": None if limit is None else limit.configured,
                "current": None if limit is None else round(limit.current, 1),
            }
        )
    return {
        "batches": batches,
        "accounts": accounts,
        "workers": snapshot.workers,
        "reasons": [list(pair) for pair in snapshot.reasons],
    }


class LiveFeed:
    """One stream's counters: each call takes a snapshot and adds it to the rate window.

    Args:
        deps: The ledger and the fleet's rate limiter.
        clock: Monotonic seconds (LiveReader's default when None).
    """

    def __init__(self, deps: Deps, clock: Callable[[], float] | None = None) -> None:
        self._reader = LiveReader(deps.ledger, limiter=deps.limiter, clock=clock or time.monotonic)
        self._window = RateWindow()

    def __call__(self) -> dict[str, Any]:
        return view_dict(self._window.add(self._reader.snapshot()))


def _message(event: str, data: dict[str, Any]) -> str:
    """One server-sent event (JSON has no newline, so one ``data:`` line)."""
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


async def counters_stream(
    feed: Callable[[], dict[str, Any]], interval: float, gone: Callable[[], Awaitable[bool]]
) -> AsyncIterator[str]:
    """Messages of ``feed`` every ``interval`` seconds until the browser goes away.

    Reads run in a worker thread (Redis calls block). A read that fails (Redis unreachable)
    sends a ``trouble`` event with the reason, and the stream goes on trying.
    """
    import anyio
    import redis

    yield f"retry: {RECONNECT_MS}\n\n"
    while not await gone():
        try:
            yield _message("counters", await anyio.to_thread.run_sync(feed))
        except VsbatchError as exc:
            yield _message("trouble", {"error": str(exc)})
        except redis.RedisError as exc:  # its text may name the server: the type is enough
            yield _message(
                "trouble", {"error": f"reading the ledger failed ({type(exc).__name__})"}
            )
        await anyio.sleep(interval)

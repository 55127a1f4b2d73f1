"""After (or before) a batch: retry its retryable failures, verify what it applied, and plan
a file without writing anything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vsbatch.bootstrap import Deps
from vsbatch.config import Settings
from vsbatch.errors import InvalidRequestError, StripeError
from vsbatch.intake.csv_cells import RowError
from vsbatch.intake.csv_reader import ParsedRow, read_updates
from vsbatch.intake.stage import Enqueue, open_and_enqueue
from vsbatch.model.row import BatchInfo, NewRow, Outcome, RowRecord
from vsbatch.model.update import parse_update, row_key
from vsbatch.ops.next_steps import retryable_rows
from vsbatch.ops.reasons import shown
from vsbatch.ops.terminal_text import safe
from vsbatch.store.keys import Keys
from vsbatch.store.memory_rate_limit import MemoryRateLimiter
from vsbatch.stripe.client import StripeClient
from vsbatch.stripe.retry import RetryPolicy
from vsbatch.worker.row_options import UPDATABLE_STATUS, RowOptions

# Reads in flight at once for plan (each still waits for the rate limiter).
PLAN_THREADS = 8


def retry_batch(deps: Deps, batch_id: str, enqueue: Enqueue) -> BatchInfo | None:
    """Re-submit the batch's retryable failures as a child batch and enqueue it.

    Returns ``None``, and creates nothing, when no failure is retryable.

    Child rows keep each row's latest idempotency key: a request that timed out may still have
    been executing, and under the same key Stripe replays it instead of applying it again.
    They also read each session first, so a change that did land ends ``skipped: unchanged``,
    and keep the original's submission order: a newer update of the session applied since then
    makes the retried row ``skipped: superseded`` instead of being overwritten.
    """
    ledger = deps.ledger
    parent = ledger.get_batch(batch_id)
    if not any(True for _ in retryable_rows(ledger, batch_id)):
        return None
    child = ledger.create_batch(
        name=f"retry of {parent.name}",
        kind="retry",
        source=parent.id,
        digest=parent.digest,
        account=parent.account,
        parent_id=parent.id,
    )

    def rows() -> Iterator[NewRow]:
        for record in retryable_rows(ledger, batch_id):
            assert record.params is not None  # is_retryable checked it
            yield NewRow(
                record.row,
                record.session_id,
                record.account,
                record.params,
                # The original's key (stored or derived): a retry is the same update.
                idempotency_key=row_key(
                    record.batch_id, record.row, record.params, record.idempotency_key
                ),
                # An update applied since the original was submitted must win over it.
                extra={"parent_seq": record.place_in_line},
            )

    ledger.add_rows(child.id, rows())
    return open_and_enqueue(deps, child.id, enqueue, RowOptions(read_first=True))


def verify_batch(deps: Deps, batch_id: str, console: Console) -> int:
    """Read back every succeeded session; print and count those that no longer match."""
    ledger = deps.ledger
    ledger.get_batch(batch_id)
    client = deps.stripe()
    policy = deps.policy
    table = Table(title="drift")
    for name in ("row", "id", "field", "applied", "now"):
        table.add_column(name)
    checked = drifted = 0
    for record in ledger.iter_rows(batch_id, [Outcome.SUCCEEDED]):
        assert record.params is not None
        update = parse_update(record.params)

        def read(record: RowRecord = record) -> dict[str, object]:
            deps.limiter.wait(record.account)
            return client.retrieve(record.session_id, stripe_account=record.account).model_dump()

        session = policy.retrying()(read)
        checked += 1
        changes = update.changes(session)
        if changes:
            drifted += 1
            for change in changes:
                table.add_row(
                    str(record.row),
                    safe(record.session_id),
                    safe(change.field),
                    safe(shown(change.after)),
                    safe(shown(change.before)),
                )
    if drifted:
        console.print(table)
    console.print(f"verified {checked} succeeded row(s): {drifted} drifted")
    return drifted


def _classify(
    client: StripeClient, limiter: MemoryRateLimiter, policy: RetryPolicy, item: ParsedRow
) -> tuple[str, str]:
    """One row's plan: (category, detail)."""
    if item.update is None or item.error is not None:
        where = item.error.column if item.error else "row"
        return "invalid", f"{where}: {item.error.reason if item.error else 'invalid'}"

    def read() -> dict[str, object]:
        limiter.wait(item.account)
        return client.retrieve(item.session_id, stripe_account=item.account).model_dump()

    try:
        session = policy.retrying()(read)
    except InvalidRequestError as exc:
        if exc.http_status == 404:
            return "not found", exc.user_message
        return "error", str(exc)
    except StripeError as exc:
        return "error", str(exc)
    if session.get("status") != UPDATABLE_STATUS:
        return "cannot update", f"status {session.get('status')}"
    changes = item.update.changes(session)
    if not changes:
        return "already so", ""
    return "would change", "; ".join(
        f"{c.field}: {shown(c.before)} -> {shown(c.after)}" for c in changes
    )


def mark_duplicates(rows: Iterable[ParsedRow]) -> Iterator[ParsedRow]:
    """``rows`` with each later valid row of a session already seen made invalid (pure).

    As the ledger does when it stages a file (``lua/add_rows.lua``): the first valid row of
    an (account, session) claims it; a later one is rejected with column ``id`` and reason
    "duplicate of row N"; an invalid row claims nothing.
    """
    first: dict[str, int] = {}
    for item in rows:
        if item.update is not None and item.error is None:
            key = Keys.session_field(item.account, item.session_id)
            claimed = first.setdefault(key, item.row)
            if claimed != item.row:
                error = RowError("id", f"duplicate of row {claimed}")
                item = ParsedRow(item.row, item.session_id, item.account, None, error, item.raw)
        yield item


def plan_file(
    settings: Settings, path: Path, console: Console, *, account: str | None = None
) -> Counter[str]:
    """Print what applying ``path`` would do to each session; write nothing anywhere."""
    limiter = MemoryRateLimiter(settings.effective_rate_limit)
    policy = RetryPolicy.from_settings(settings)
    table = Table(title=f"plan for {safe(path)}")
    for name in ("row", "id", "plan", "detail"):
        table.add_column(name)
    counts: Counter[str] = Counter()
    with (
        StripeClient.from_settings(settings) as client,
        ThreadPoolExecutor(PLAN_THREADS) as pool,
    ):
        rows = mark_duplicates(
            ParsedRow(p.row, p.session_id, p.account or account, p.params, p.error, p.raw)
            for p in read_updates(path)
        )
        results = pool.map(lambda item: (item, _classify(client, limiter, policy, item)), rows)
        for item, (category, detail) in results:
            counts[category] += 1
            table.add_row(str(item.row), safe(item.session_id), category, safe(detail))
    console.print(table)
    console.print(", ".join(f"{name}: {n}" for name, n in sorted(counts.items())))
    return counts

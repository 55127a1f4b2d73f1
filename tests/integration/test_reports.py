"""The terminal report: totals and one readable line per row that was not applied."""

from __future__ import annotations

import io

import redis
from rich.console import Console

from vsbatch.model.row import NewRow, Outcome
from vsbatch.ops.reports import print_table
from vsbatch.store.ledger import Ledger


def test_table_explains_every_row_not_applied(redis_client: redis.Redis) -> None:
    """Skipped rows show their reason and status, failures their code and message."""
    # Given a batch with a success, a skip, a failure and a rejection
    ledger = Ledger(redis_client)
    batch = ledger.create_batch(name="t", kind="csv", source="test")
    params = {"metadata": {"k": "v"}}
    ledger.add_rows(
        batch.id,
        [
            NewRow(2, "vs_a", None, params, idempotency_key="k2"),
            NewRow(3, "vs_b", None, params, idempotency_key="k3"),
            NewRow(4, "vs_c", None, params, idempotency_key="k4"),
            NewRow(5, "vs_d", None, None, rejection=("type", "'x' is not a verification type")),
        ],
    )
    ledger.open_batch(batch.id)
    ledger.transition(batch.id, 2, Outcome.SUCCEEDED)
    ledger.transition(
        batch.id, 3, Outcome.SKIPPED, reason="not_requires_input", session_status="verified"
    )
    ledger.transition(
        batch.id, 4, Outcome.FAILED, error_code="resource_missing", error_message="No such x"
    )
    out = io.StringIO()

    # When the table is printed
    print_table(Console(file=out, width=200), ledger, ledger.get_batch(batch.id))

    # Then each row not applied has its line, and the applied one has none
    text = out.getvalue()
    assert "not_requires_input (status verified)" in text
    assert "resource_missing: No such x" in text
    assert "type: 'x' is not a verification type" in text
    assert "vs_a" not in text
    assert "total" in text and "4" in text

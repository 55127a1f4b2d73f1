"""Rows and batches for the ledger tests: session ids, rows with the idempotency key's shape,
and batches staged or opened with them.
"""

from __future__ import annotations

import hashlib

from vsbatch.model.row import BatchInfo, NewRow
from vsbatch.store.ledger import Ledger

RETENTION = 3600


SELFIE = {"options": {"document": {"require_matching_selfie": True}}}


def sid(n: int) -> str:
    return f"vs_1{n:023d}"


def row(n: int, session: int | None = None, account: str | None = None) -> NewRow:
    key = hashlib.sha256(f"{n}".encode()).hexdigest()  # the shape updates.idempotency_key makes
    return NewRow(
        row=n,
        session_id=sid(n if session is None else session),
        account=account,
        params=SELFIE,
        idempotency_key=f"vsbatch-b_0123456789abcdef:{n}-{key}",
    )


def staged(ledger: Ledger, rows: list[NewRow]) -> BatchInfo:
    batch = ledger.create_batch(name="t", kind="csv", source="t.csv")
    ledger.add_rows(batch.id, rows)
    return batch


def opened(ledger: Ledger, rows: list[NewRow]) -> BatchInfo:
    return ledger.open_batch(staged(ledger, rows).id)

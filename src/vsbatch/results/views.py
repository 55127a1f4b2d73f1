"""The SQL views of the results store: the common reconciliation questions, ready to query.

Plain SQL that SQLite and PostgreSQL both run; the migrations create and drop them. Each view
reads the two tables of :mod:`vsbatch.results.schema`; ``reason`` is the same short reason the
reports give (:func:`vsbatch.ops.reasons.reason`): the skip or rejection reason, else Stripe's
error code, else the error class.
"""

from __future__ import annotations

__all__ = ["CREATE", "DROP", "REASON_SQL"]

# The row's short reason, as :func:`vsbatch.ops.reasons.reason` computes it.
REASON_SQL = "COALESCE(NULLIF(r.reason, ''), r.error_code, r.error_type, '')"

CREATE: dict[str, str] = {
    # Per batch and outcome: how many rows (the batch's own columns alongside).
    "vsbatch_batch_totals": """
        SELECT b.batch_id, b.name, b.kind, b.account, b.state, b.created_at, b.finished_at,
               r.outcome, COUNT(*) AS row_count
        FROM vsbatch_batches b JOIN vsbatch_rows r ON r.batch_id = b.batch_id
        GROUP BY b.batch_id, b.name, b.kind, b.account, b.state, b.created_at, b.finished_at,
                 r.outcome
    """,
    # Rows not applied, grouped by why: per batch, outcome and reason.
    "vsbatch_failures_by_reason": f"""
        SELECT r.batch_id, r.outcome, {REASON_SQL} AS reason, COUNT(*) AS row_count
        FROM vsbatch_rows r
        WHERE r.outcome IN ('failed', 'rejected', 'skipped')
        GROUP BY r.batch_id, r.outcome, {REASON_SQL}
    """,
    # Every archived update of every session, with its batch: a session's history.
    "vsbatch_session_history": f"""
        SELECT r.session_id, r.account, r.batch_id, b.name AS batch_name, b.kind,
               b.created_at AS batch_created_at, r.row_num, r.seq, r.outcome,
               {REASON_SQL} AS reason, r.attempts, r.request_id, r.session_status,
               r.idempotency_key, r.params, r.error_message, r.updated_at
        FROM vsbatch_rows r JOIN vsbatch_batches b ON b.batch_id = r.batch_id
    """,
}

DROP: list[str] = [f"DROP VIEW IF EXISTS {name}" for name in CREATE]

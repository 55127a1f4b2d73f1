"""The results store's tables (SQLAlchemy Core): archived batches and their finished rows.

Two tables, named for SQL users who query them by hand (operations, compliance, finance):

- ``vsbatch_batches``: one row per batch, as the ledger last saw it (name, kind, source,
  account, state, its counters as JSON, created/finished times) plus what the archiver knows
  (``archived_rows``, ``complete``: every row of a finished batch is here).
- ``vsbatch_rows``: one row per finished input row, keyed by ``(batch_id, row_num)``:
  outcome, reason, attempts, idempotency key, request id, the session's status, and the
  update as JSON (``params``, as sent to Stripe).

Times are UTC ``TIMESTAMP WITH TIME ZONE`` (PostgreSQL) or ISO text (SQLite), so that
``WHERE created_at >= '2026-07-01'`` works in both. The views for common questions are created
by the migrations (:mod:`vsbatch.results.views`). Alembic owns the DDL; this module is what
the code reads and writes through, and the first migration is written from it.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

__all__ = ["BATCHES", "JSON_TYPE", "METADATA", "ROWS"]

METADATA = MetaData()

# JSONB on PostgreSQL (indexable, ``->>`` queries), JSON text elsewhere.
JSON_TYPE = JSON().with_variant(JSONB(), "postgresql")
UTC_TIME = DateTime(timezone=True)

BATCHES = Table(
    "vsbatch_batches",
    METADATA,
    Column("batch_id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("source", Text, nullable=False),
    Column("digest", String(128)),
    Column("account", String(255)),
    Column("parent_id", String(64)),
    Column("state", String(16), nullable=False),
    Column("total", Integer, nullable=False),
    Column("counts", JSON_TYPE, nullable=False),
    Column("options", JSON_TYPE, nullable=False),
    Column("created_at", UTC_TIME, nullable=False),
    Column("finished_at", UTC_TIME),
    Column("archived_at", UTC_TIME, nullable=False),
    Column("archived_rows", Integer, nullable=False),
    # Every row of a batch in a final state is here: the archiver need not read it again.
    Column("complete", Boolean, nullable=False),
)

ROWS = Table(
    "vsbatch_rows",
    METADATA,
    Column(
        "batch_id",
        String(64),
        ForeignKey("vsbatch_batches.batch_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("row_num", Integer, nullable=False),
    Column("session_id", String(255), nullable=False),
    Column("account", String(255)),
    Column("outcome", String(16), nullable=False),
    Column("reason", Text),
    Column("column_name", Text),
    Column("attempts", Integer, nullable=False),
    Column("retryable", Boolean),
    Column("error_type", String(64)),
    Column("error_code", String(128)),
    Column("error_message", Text),
    Column("request_id", String(255)),
    Column("session_status", String(64)),
    Column("idempotency_key", String(255)),
    Column("seq", BigInteger, nullable=False),
    Column("params", JSON_TYPE),  # the update, as sent to Stripe
    Column("extra", JSON_TYPE),
    Column("created_at", UTC_TIME),
    Column("updated_at", UTC_TIME),
    PrimaryKeyConstraint("batch_id", "row_num", name="pk_vsbatch_rows"),
    Index("ix_vsbatch_rows_session", "session_id", "account"),
    Index("ix_vsbatch_rows_outcome", "batch_id", "outcome"),
)

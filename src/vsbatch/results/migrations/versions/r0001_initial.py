"""The first schema: batches, rows, and the views of the common questions.

The tables are written out here rather than taken from :mod:`vsbatch.results.schema`: a
migration is history, and must create what it created the day it was written.

Revision ID: r0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from vsbatch.results.views import CREATE, DROP

revision = "r0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create both tables and their indexes, then the views."""
    op.create_table(
        "vsbatch_batches",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("digest", sa.String(128)),
        sa.Column("account", sa.String(255)),
        sa.Column("parent_id", sa.String(64)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("counts", JSON, nullable=False),
        sa.Column("options", JSON, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("finished_at", TIME),
        sa.Column("archived_at", TIME, nullable=False),
        sa.Column("archived_rows", sa.Integer, nullable=False),
        sa.Column("complete", sa.Boolean, nullable=False),
    )
    op.create_table(
        "vsbatch_rows",
        sa.Column(
            "batch_id",
            sa.String(64),
            sa.ForeignKey("vsbatch_batches.batch_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("row_num", sa.Integer, nullable=False),
        sa.Column("session_id", sa.String(255), nullable=False),
        sa.Column("account", sa.String(255)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("column_name", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("retryable", sa.Boolean),
        sa.Column("error_type", sa.String(64)),
        sa.Column("error_code", sa.String(128)),
        sa.Column("error_message", sa.Text),
        sa.Column("request_id", sa.String(255)),
        sa.Column("session_status", sa.String(64)),
        sa.Column("idempotency_key", sa.String(255)),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("params", JSON),
        sa.Column("extra", JSON),
        sa.Column("created_at", TIME),
        sa.Column("updated_at", TIME),
        sa.PrimaryKeyConstraint("batch_id", "row_num", name="pk_vsbatch_rows"),
    )
    op.create_index("ix_vsbatch_rows_session", "vsbatch_rows", ["session_id", "account"])
    op.create_index("ix_vsbatch_rows_outcome", "vsbatch_rows", ["batch_id", "outcome"])
    for name, body in CREATE.items():
        op.execute(f"CREATE VIEW {name} AS {body}")


def downgrade() -> None:
    """Drop the views, then the tables."""
    for statement in DROP:
        op.execute(statement)
    op.drop_table("vsbatch_rows")
    op.drop_table("vsbatch_batches")

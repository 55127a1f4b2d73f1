"""The results store against real databases: a SQLite file always, PostgreSQL when reachable."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text

from vsbatch.errors import ConfigError, NotFoundError
from vsbatch.model.row import BatchInfo, BatchState, Outcome, RowRecord
from vsbatch.results.store import ResultsStore

T0 = 1_790_000_000.0


def batch(
    batch_id: str = "b1", *, state: BatchState = BatchState.DONE, total: int = 4
) -> BatchInfo:
    return BatchInfo(
        id=batch_id,
        name=f"name of {batch_id}",
        kind="csv",
        source="plans.csv",
        digest="d" * 64,
        account=None,
        created_at=T0,
        state=state,
        total=total,
        counts={
            o: {Outcome.SUCCEEDED: 2, Outcome.FAILED: 1, Outcome.SKIPPED: 1}.get(o, 0)
            for o in Outcome
        },
        finished_at=T0 + 60 if state is BatchState.DONE else None,
        options={"read_first": False},
    )


def record(
    row: int, outcome: Outcome, *, batch_id: str = "b1", session: str = "", **kw: object
) -> RowRecord:
    fields: dict[str, object] = {
        "batch_id": batch_id,
        "row": row,
        "session_id": session or f"vs_{row}",
        "account": None,
        "params": {"metadata": {"plan": f"gold{row}"}},
        "idempotency_key": f"vsbatch-{batch_id}:{row}-abc",
        "seq": row,
        "outcome": outcome,
        "attempts": 1,
        "created_at": T0 + row,
        "updated_at": T0 + row + 0.5,
    }
    fields.update(kw)
    return RowRecord(**fields)  # type: ignore[arg-type]


ROWS = [
    record(2, Outcome.SUCCEEDED, request_id="req_2", session_status="requires_input"),
    record(
        3,
        Outcome.FAILED,
        error_type="InvalidRequestError",
        error_code="resource_missing",
        error_message="No such session",
        retryable=False,
        request_id="req_3",
    ),
    record(4, Outcome.SKIPPED, reason="unchanged", session_status="verified"),
    record(5, Outcome.SUCCEEDED, attempts=3, request_id="req_5"),
]


@pytest.fixture
def store(results_url: str) -> Iterator[ResultsStore]:
    with ResultsStore.open(results_url) as opened:
        yield opened


class TestWrites:
    def test_rows_come_back_as_written(self, store: ResultsStore) -> None:
        """A row record read back equals the one written."""
        store.upsert_rows(batch(), ROWS)

        assert ROWS == store.batch_rows("b1")

    def test_writing_twice_keeps_one_row_each(self, store: ResultsStore) -> None:
        """The upsert is keyed by batch and row: a second write duplicates nothing."""
        store.upsert_rows(batch(), ROWS)
        store.upsert_rows(batch(), ROWS[1:3])

        assert 4 == store.count_rows("b1")
        assert 4 == store.archived_batch("b1").archived_rows

    def test_unfinished_rows_are_left_out(self, store: ResultsStore) -> None:
        """Queued, running and retrying rows are not archived."""
        written = store.upsert_rows(
            batch(state=BatchState.OPEN), [*ROWS, record(6, Outcome.RETRYING)]
        )

        assert (4, 4) == (written, store.count_rows("b1"))

    def test_complete_only_for_a_final_batch(self, store: ResultsStore) -> None:
        """A batch is marked complete only when it has ended and the caller says all rows came."""
        store.upsert_rows(batch("open", state=BatchState.OPEN), [], complete=True)
        store.upsert_rows(batch("done"), [], complete=True)

        assert {"done"} == store.complete_batches(["open", "done", "missing"])

    def test_a_later_write_keeps_the_complete_mark(self, store: ResultsStore) -> None:
        """Writing a complete batch's rows again leaves it complete."""
        store.upsert_rows(batch(), ROWS, complete=True)
        store.upsert_rows(batch(), ROWS[:1])

        assert store.archived_batch("b1").complete


class TestReads:
    @pytest.fixture(autouse=True)
    def _rows(self, store: ResultsStore) -> None:
        store.upsert_rows(batch(), ROWS, complete=True)
        moved = batch("b2", total=1)
        store.upsert_rows(
            replace(moved, created_at=T0 + 3600),
            [
                record(
                    1,
                    Outcome.FAILED,
                    batch_id="b2",
                    session="vs_3",
                    error_code="resource_missing",
                    seq=9,
                )
            ],
        )

    def test_list_batches_newest_first(self, store: ResultsStore) -> None:
        """Batches come newest first, with their ledger counters."""
        found = store.list_batches()

        assert ["b2", "b1"] == [b.info.id for b in found]
        assert batch() == found[1].info

    def test_batch_totals(self, store: ResultsStore) -> None:
        """Totals count archived rows per terminal outcome, zeros included."""
        expected = {"succeeded": 2, "skipped": 1, "failed": 1, "rejected": 0}

        assert expected == store.batch_totals("b1")

    def test_failures_by_reason(self, store: ResultsStore) -> None:
        """Rows not applied are grouped by the reports' short reason, most frequent first."""
        found = {(r.batch_id, r.outcome, r.reason, r.rows) for r in store.failures_by_reason()}

        assert {
            ("b1", "failed", "resource_missing", 1),
            ("b1", "skipped", "unchanged", 1),
            ("b2", "failed", "resource_missing", 1),
        } == found

    def test_batch_rows_filters_and_pages(self, store: ResultsStore) -> None:
        """Filters by outcome, reason and session; limit and offset page in row order."""
        assert [2, 5] == [r.row for r in store.batch_rows("b1", outcome="succeeded")]
        assert [3] == [r.row for r in store.batch_rows("b1", reason="resource_missing")]
        assert [4] == [r.row for r in store.batch_rows("b1", session="vs_4")]
        assert [3, 4] == [r.row for r in store.batch_rows("b1", limit=2, offset=1)]

    def test_session_history_across_batches(self, store: ResultsStore) -> None:
        """A session's updates come from every batch, oldest first, with the batch's name."""
        history = store.session_history("vs_3")

        assert [("b1", 3), ("b2", 1)] == [(h.record.batch_id, h.record.row) for h in history]
        assert "name of b2" == history[1].batch_name

    def test_iter_rows_by_outcome(self, store: ResultsStore) -> None:
        """iter_rows reads as the ledger's does: row order, outcomes filter."""
        rows = store.iter_rows("b1", [Outcome.FAILED, Outcome.SKIPPED])

        assert [3, 4] == [r.row for r in rows]

    def test_unknown_batch(self, store: ResultsStore) -> None:
        """An unknown batch is a NotFoundError naming it."""
        with pytest.raises(NotFoundError, match="no batch nope"):
            store.get_batch("nope")

    def test_views_answer_the_common_questions(self, store: ResultsStore) -> None:
        """The SQL views give totals, failures by reason and a session's history."""
        with store.engine.connect() as conn:
            totals = conn.execute(
                text("SELECT outcome, row_count FROM vsbatch_batch_totals WHERE batch_id = 'b1'")
            ).all()
            reasons = (
                conn.execute(
                    text("SELECT reason FROM vsbatch_failures_by_reason WHERE batch_id = 'b1'")
                )
                .scalars()
                .all()
            )
            history = (
                conn.execute(
                    text(
                        "SELECT batch_id FROM vsbatch_session_history WHERE session_id = 'vs_3'"
                        " ORDER BY seq"
                    )
                )
                .scalars()
                .all()
            )

        assert {("succeeded", 2), ("failed", 1), ("skipped", 1)} == set(map(tuple, totals))
        assert {"resource_missing", "unchanged"} == set(reasons)
        assert ["b1", "b2"] == history

    def test_the_docs_q3_question(self, store: ResultsStore) -> None:
        """docs/results-store.md's query (sessions whose metadata.plan changed in a quarter,
        and which failed) runs as written on this database."""
        doc = (Path(__file__).parents[2] / "docs" / "results-store.md").read_text("utf-8")
        blocks = doc.split("```sql\n")[1].split("```")[0].split("\n\n")
        sql = blocks[0 if store.engine.dialect.name == "postgresql" else 1]
        sql = sql.split("\n", 1)[1].rstrip().rstrip(";")  # the comment line names the database
        sql = sql.replace("2026-07-01", "2026-09-01")  # the rows here end in September

        with store.engine.connect() as conn:
            found = conn.exec_driver_sql(sql).all()

        assert [("vs_2", "gold2"), ("vs_3", "gold3"), ("vs_3", "gold1")] == [
            (r.session_id, r.plan) for r in found
        ][:3]
        assert {"failed"} == {r.outcome for r in found if r.session_id == "vs_3"}


class TestOpening:
    def test_many_rows_page(self, store: ResultsStore) -> None:
        """More rows than a write block and a read page go in and come out whole."""
        rows = [record(n, Outcome.SUCCEEDED) for n in range(2, 2503)]

        store.upsert_rows(batch(total=len(rows)), rows)

        assert [r.row for r in rows] == [r.row for r in store.iter_rows("b1")]

    def test_reopening_migrates_nothing_twice(self, results_url: str) -> None:
        """A second open of the same database finds it current and keeps its rows."""
        with ResultsStore.open(results_url) as first:
            first.upsert_rows(batch(), ROWS)

        with ResultsStore.open(results_url) as second:
            assert 4 == second.count_rows("b1")


class TestMigrations:
    def test_head_is_the_newest_script(self) -> None:
        """engine.HEAD (the fast path of every open) names the newest migration."""
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        from vsbatch.results.engine import HEAD, SCRIPT_LOCATION

        config = Config()
        config.set_main_option("script_location", SCRIPT_LOCATION)

        assert HEAD == ScriptDirectory.from_config(config).get_current_head()

    def test_a_current_database_opens_without_alembic(self, results_url: str) -> None:
        """Opening a database at HEAD runs no migration: its revision stays, rows stay."""
        from vsbatch.results.engine import HEAD, current_revision

        with ResultsStore.open(results_url) as first:
            first.upsert_rows(batch(), ROWS)
        with ResultsStore.open(results_url) as second:
            assert (HEAD, 4) == (current_revision(second.engine), second.count_rows("b1"))


class TestSharedDatabase:
    def test_another_applications_alembic_is_left_alone(self, results_url: str) -> None:
        """A database whose alembic_version is another application's opens, and keeps it."""
        from sqlalchemy import create_engine

        from vsbatch.results.engine import parse_url

        engine = create_engine(parse_url(results_url))
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
            conn.execute(text("INSERT INTO alembic_version VALUES ('theirs1')"))

        with ResultsStore.open(results_url) as store:
            store.upsert_rows(batch(), ROWS)

        with engine.connect() as conn:
            theirs = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        engine.dispose()
        assert ["theirs1"] == theirs

    def test_a_schema_from_a_newer_vsbatch_is_one_line(self, results_url: str) -> None:
        """A database migrated by a newer vsbatch is one ConfigError saying so."""
        ResultsStore.open(results_url).close()
        from sqlalchemy import create_engine

        from vsbatch.results.engine import parse_url

        engine = create_engine(parse_url(results_url))
        with engine.begin() as conn:
            conn.execute(text("UPDATE vsbatch_alembic_version SET version_num = 'r9999'"))
        engine.dispose()

        with pytest.raises(ConfigError, match="newer vsbatch migrated it"):
            ResultsStore.open(results_url)


class TestSqliteFile:
    def test_the_file_is_the_owners_alone(self, tmp_path: Path) -> None:
        """The SQLite file (its rows hold what the CSV held) is created 0600."""
        path = tmp_path / "data" / "results.sqlite3"

        ResultsStore.open(f"sqlite:///{path}").close()

        assert 0o600 == path.stat().st_mode & 0o777


class TestBadUrls:
    def test_unparseable(self) -> None:
        """A URL that is no URL is one ConfigError naming the setting."""
        with pytest.raises(ConfigError, match="VSBATCH_RESULTS_URL: not a database URL"):
            ResultsStore.open("not a url")

    def test_unsupported_backend(self) -> None:
        """Only SQLite and PostgreSQL are accepted."""
        with pytest.raises(ConfigError, match="mysql is not supported"):
            ResultsStore.open("mysql://u@h/db")

    def test_unreachable_hides_the_password(self) -> None:
        """An unreachable server is one line naming it, its password hidden."""
        with pytest.raises(ConfigError) as caught:
            ResultsStore.open("postgresql://u:s3cret@127.0.0.1:1/db?connect_timeout=2")

        message = str(caught.value)
        assert "s3cret" not in message and "127.0.0.1:1" in message and "\n" not in message

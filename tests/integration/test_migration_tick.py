"""Tasks take ids, and what to do comes from the worker's side (real Redis and emulator): a beat
tick runs the named migration from the worker's own file, and a chunk runs with its batch's
options from the ledger."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vsbatch.bootstrap import Deps, bootstrap
from vsbatch.migrations.run import run_tick
from vsbatch.model.row import NewRow, Outcome
from vsbatch.worker.celery_app import configure, install_deps
from vsbatch.worker.messages import InvalidArguments
from vsbatch.worker.row_options import RowOptions
from vsbatch.worker.tasks import process_chunk

WORKER_FILE = """
[[migration]]
name = "tag"
schedule = "1h"
select = { metadata_present = ["crm"] }
action = [{ op = "set", values = { tagged = "yes" } }]

[[migration]]
name = "manual"
action = [{ op = "set", values = { tagged = "yes" } }]
"""


@pytest.fixture
def worker_deps(deps: Deps, tmp_path: Path) -> Iterator[Deps]:
    """Dependencies of a worker whose ``VSBATCH_MIGRATIONS_FILE`` is ``WORKER_FILE``."""
    spec = tmp_path / "migrations.toml"
    spec.write_text(WORKER_FILE, encoding="utf-8")
    built = bootstrap(deps.settings.model_copy(update={"migrations_file": spec}))
    try:
        yield built
    finally:
        built.close()


class Sent:
    """An ``Enqueue`` that records the chunks instead of sending them."""

    def __init__(self) -> None:
        self.chunks: list[tuple[str, list[int]]] = []

    def __call__(self, batch_id: str, rows: list[int], options: RowOptions, **_: Any) -> None:
        self.chunks.append((batch_id, list(rows)))


class TestRunTick:
    def test_runs_the_named_migration_from_the_workers_file(
        self, emulator: Any, worker_deps: Deps
    ) -> None:
        """The tick's batch holds exactly the sessions the worker file's selector matches."""
        emulator.seed(count=2, metadata={"crm": "c"})
        emulator.seed(count=3)
        sent = Sent()

        batch = run_tick(worker_deps, "tag", sent)

        assert batch is not None
        assert (2, "tag") == (batch.total, batch.source)

    @pytest.mark.parametrize("name", ["nope", "manual"])
    def test_name_not_scheduled_in_the_file_is_refused(
        self, emulator: Any, worker_deps: Deps, name: str
    ) -> None:
        """An unknown or unscheduled name is refused and opens no batch."""
        emulator.seed(count=2, metadata={"crm": "c"})
        sent = Sent()

        with pytest.raises(InvalidArguments, match="no scheduled migration"):
            run_tick(worker_deps, name, sent)

        assert ([], []) == (sent.chunks, worker_deps.ledger.list_batches(limit=10))

    def test_unreadable_file_logs_one_line_and_runs_nothing(
        self, emulator: Any, deps: Deps, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Without the worker's file, a tick logs one line naming it and does nothing."""
        settings = deps.settings.model_copy(update={"migrations_file": tmp_path / "absent.toml"})
        worker = bootstrap(settings)
        caplog.set_level(logging.ERROR, logger="vsbatch.migrations.run")
        try:
            batch = run_tick(worker, "tag", Sent())
        finally:
            worker.close()

        lines = [r.getMessage() for r in caplog.records]
        assert (None, 1, True) == (batch, len(lines), "absent.toml" in lines[0])


class TestChunkOptionsComeFromTheLedger:
    def test_message_options_do_not_override_the_batch(self, deps: Deps, emulator: Any) -> None:
        """A chunk message asking to park rows for 72 h cannot change a batch opened to fail."""
        # Given a batch opened with the default options (no parking) and an outage
        (sid,) = emulator.seed(count=1)
        batch = deps.ledger.create_batch(name="b", kind="csv", source="b.csv")
        deps.ledger.add_rows(
            batch.id, [NewRow(1, sid, None, {"metadata": {"k": "v"}}, idempotency_key="ik-1")]
        )
        deps.ledger.open_batch(batch.id, RowOptions().to_message())
        emulator.configure(fail_503_rate=1.0)
        configure(deps.settings)
        install_deps(deps)

        # When a chunk naming it asks for parking
        process_chunk(batch.id, [1], {"read_first": False, "lock_wait": 1.0, "park_hours": 72.0})

        # Then the batch's own options applied: the row failed instead of being parked
        assert Outcome.FAILED == deps.ledger.get_row(batch.id, 1).outcome

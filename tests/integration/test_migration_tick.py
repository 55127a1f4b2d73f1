"""A beat tick on the real Redis and emulator: the worker runs the named migration from its own
file, and refuses names its file does not schedule."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vsbatch.bootstrap import Deps, bootstrap
from vsbatch.messages import InvalidArguments
from vsbatch.migrate_run import run_tick
from vsbatch.processing import RowOptions

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
        caplog.set_level(logging.ERROR, logger="vsbatch.migrate_run")
        try:
            batch = run_tick(worker, "tag", Sent())
        finally:
            worker.close()

        lines = [r.getMessage() for r in caplog.records]
        assert (None, 1, True) == (batch, len(lines), "absent.toml" in lines[0])

"""Where the results store is: ``VSBATCH_RESULTS_URL``, or SQLite in the data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from vsbatch.config import Settings


class TestResultsUrl:
    def test_default_is_sqlite_in_the_data_directory(self, tmp_path: Path) -> None:
        """Unset, the store is ``results.sqlite3`` in the (absolute) data directory."""
        settings = Settings(_env_file=None, data_dir=tmp_path / "data")

        assert f"sqlite:///{tmp_path}/data/results.sqlite3" == settings.results_database_url

    def test_the_variable_wins(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """VSBATCH_RESULTS_URL names a shared database."""
        monkeypatch.setenv("VSBATCH_RESULTS_URL", "postgresql://vsbatch@db/results")

        assert "postgresql://vsbatch@db/results" == Settings(_env_file=None).results_database_url

    def test_archiving_defaults(self) -> None:
        """Workers archive by default; archived batches stay a week in Redis."""
        settings = Settings(_env_file=None)

        assert (True, 7.0) == (settings.archive, settings.archived_retention_days)

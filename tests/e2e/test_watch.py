"""``vsbatch status --watch`` as a user runs it: through a pipe (one plain line per batch and
second, the batch's exit code) and on a terminal (a pty: the full-screen view, Ctrl-C 130)."""

from __future__ import annotations

import itertools
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Workers
from tests.helpers import metadata_csv, run_vsbatch

ANSI = re.compile("\x1b[\\[\\]]")
LINE = re.compile(r"^(b_\w+) (open|done) (\d+)/(\d+) · succeeded \d+, .* rows/s · .* alive$")


def submitted(env: dict[str, str], emulator: Any, tmp_path: Path, rows: int) -> str:
    """The id of a batch of ``rows`` updatable sessions, submitted for workers."""
    path = metadata_csv(tmp_path / "in.csv", emulator.seed(count=rows), "metadata.k", "v")
    result = run_vsbatch(env, "submit", str(path))
    assert 0 == result.returncode, result.stderr
    return result.stdout.strip()


def timed_lines(stream: Any, into: list[tuple[float, str]]) -> threading.Thread:
    """A thread appending (arrival time, line) for each line of ``stream``."""

    def read() -> None:
        for raw in stream:
            into.append((time.monotonic(), raw.decode("utf-8", "replace").rstrip("\n")))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


class TestPipe:
    def test_all_open_batches_one_line_a_second_until_ctrl_c(
        self, env: dict[str, str], emulator: Any, tmp_path: Path
    ) -> None:
        """Piped, each second brings one plain line per open batch; Ctrl-C exits 130."""
        # Given an open batch that no worker runs
        batch_id = submitted(env, emulator, tmp_path, 3)
        proc = subprocess.Popen(
            [sys.executable, "-m", "vsbatch", "status", "--watch"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        lines: list[tuple[float, str]] = []
        reader = timed_lines(proc.stdout, lines)

        # When it watches for a while, then gets Ctrl-C
        deadline = time.monotonic() + 30
        while len(lines) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
        reader.join(timeout=5)

        # Then four lines or more, each the batch's, about a second apart, and no ANSI code
        gaps = [round(b[0] - a[0], 1) for a, b in itertools.pairwise(lines[:4])]
        assert (130, "stopped watching", True, [], True) == (
            proc.returncode,
            stderr.decode().splitlines()[-1],
            len(lines) >= 4 and all(LINE.match(text) for _, text in lines),
            [text for _, text in lines if ANSI.search(text) or batch_id not in text],
            all(0.7 <= gap <= 1.5 for gap in gaps),
        ), (lines, stderr)

    def test_one_batch_lines_until_done_then_summary_and_exit_code(
        self, env: dict[str, str], emulator: Any, tmp_path: Path, workers: Workers
    ) -> None:
        """Piped, ``status B --watch`` prints lines until the batch is done, then exits 0."""
        # Given a batch of 20 rows and a worker held to 10 rows/s
        batch_id = submitted(env, emulator, tmp_path, 20)
        workers.start(concurrency=2, VSBATCH_RATE_LIMIT="10")

        # When watching it through a pipe
        result = run_vsbatch(env, "status", batch_id, "--watch", timeout=120)

        # Then plain lines, the last one done, then the summary, and exit 0
        lines = [line for line in result.stdout.splitlines() if LINE.match(line)]
        assert (0, True, f"{batch_id} done 20/20", None) == (
            result.returncode,
            len(lines) >= 2,
            " ".join(lines[-1].split()[:3]) if lines else "",
            ANSI.search(result.stdout),
        ), result.stdout + result.stderr


def read_until(fd: int, wanted: str, timeout: float) -> str:
    """Everything read from ``fd`` until ``wanted`` appears in it (or ``timeout``)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted.encode() not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
    return seen.decode("utf-8", "replace")


class TestTerminal:
    def test_full_screen_view_then_ctrl_c_exits_130_without_a_traceback(
        self, env: dict[str, str], emulator: Any, tmp_path: Path
    ) -> None:
        """On a terminal the view takes the screen, draws its tables; Ctrl-C gives it back."""
        # Given an open batch, and ``status --watch`` on a pseudo-terminal
        batch_id = submitted(env, emulator, tmp_path, 2)
        master, slave = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "vsbatch", "status", "--watch"],
            env={**env, "TERM": "xterm-256color", "COLUMNS": "140", "LINES": "40"},
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        try:
            # When the view is drawn, then Ctrl-C
            screen = read_until(master, "no failure among the newest rows", 30)
            proc.send_signal(signal.SIGINT)
            code = proc.wait(timeout=30)
            rest = read_until(master, "stopped watching", 5)
        finally:
            os.close(master)
            if proc.poll() is None:
                proc.kill()

        # Then it entered the alternate screen, drew the batch and the workers, and left cleanly
        plain = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", screen)
        assert (130, True, True, True, True, False) == (
            code,
            "\x1b[?1049h" in screen,
            batch_id in plain and "0 workers alive" in plain,
            "\x1b[?1049l" in screen + rest,
            "stopped watching" in rest,
            "Traceback" in screen + rest,
        ), screen + rest

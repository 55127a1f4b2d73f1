"""Two ``vsbatch submit`` (or ``run``) processes of one file started together: one batch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROUNDS = 4
ROWS = 2000  # staging a bigger file widens the window the race used to slip through
RUN_ROUNDS = 2
RUN_LATENCY_MS = 8000


def _submit(env: dict[str, str], path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vsbatch", "submit", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class TestSubmitRaceCli:
    def test_two_submit_processes_of_one_file_accept_one_batch(
        self, env: dict[str, str], tmp_path: Path
    ) -> None:
        """Each round one process prints a batch id; the other exits 2 with one line naming it."""
        for tag in range(ROUNDS):
            path = tmp_path / f"r{tag}.csv"
            rows = "".join(f"vs_{tag:04d}{n:020d},r2\n" for n in range(ROWS))
            path.write_text("id,metadata.race\n" + rows, encoding="utf-8")

            procs = [_submit(env, path), _submit(env, path)]
            outputs = [p.communicate(timeout=180) for p in procs]
            results = [
                (p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)
            ]

            accepted = [out.strip() for rc, out, _ in results if rc == 0]
            refused = [err.strip() for rc, _, err in results if rc == 2]
            assert (1, 1) == (len(accepted), len(refused)), f"round {tag}: {results}"
            assert 1 == len(refused[0].splitlines()) and accepted[0] in refused[0]


class TestRunRaceCli:
    def test_two_run_processes_of_one_file_apply_each_session_once(
        self, env: dict[str, str], tmp_path: Path, emulator: Any
    ) -> None:
        """Two ``vsbatch run``s of one file started together share one batch: both exit 0
        with the same batch id and each session is applied exactly once."""
        # Every update takes 8 s, so the runs overlap even when the second starts seconds late
        # on a loaded machine (a run of a file whose batch has finished makes a new batch).
        emulator.configure(latency_ms=RUN_LATENCY_MS)
        for tag in range(RUN_ROUNDS):
            ids = emulator.seed(count=20)
            path = tmp_path / f"r{tag}.csv"
            path.write_text("id,metadata.race\n" + "".join(f"{i},r2\n" for i in ids), "utf-8")
            command = [sys.executable, "-m", "vsbatch", "run", str(path), "--format", "json"]

            procs = [
                subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(2)
            ]
            # communicate, not wait: a full stderr pipe would block the child forever.
            outputs = [p.communicate(timeout=120) for p in procs]
            results = [
                (p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)
            ]

            assert [0, 0] == [rc for rc, _, _ in results], f"round {tag}: {results}"
            assert 1 == len({json.loads(out)["id"] for _, out, _ in results}), results
            applied = emulator.stats()["applied"]
            assert dict.fromkeys(ids, 1) == {i: applied.get(i) for i in ids}

"""Two ``vsbatch submit`` processes of one file started together: one batch, one refusal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROUNDS = 4
ROWS = 2000  # staging a bigger file widens the window the race used to slip through


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

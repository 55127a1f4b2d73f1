"""A full or unusable data directory: one line, exit 2, and never a stray embedded server.

The data directory lives on a real 600 KiB tmpfs (mounted by the test, skipped where mounting
is not permitted) that the test fills to the last byte.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_API_KEY


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 600 KiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        for pid in servers_in(mount):
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> None:
    """Write a file until the disk has no byte left."""
    with (disk / "filler").open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as exc:
            assert errno.ENOSPC == exc.errno


def servers_in(root: Path) -> list[int]:
    """Pids of the processes whose working directory is under ``root`` (embedded servers)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if Path(os.readlink(proc / "cwd")).is_relative_to(root):
                pids.append(int(proc.name))
    return pids


def vsbatch(*args: str, data_dir: Path | str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("VSBATCH_", "STRIPE_"))},
        "VSBATCH_STRIPE_API_KEY": TEST_API_KEY,
        "VSBATCH_DATA_DIR": str(data_dir),
        "VSBATCH_LOG_FORMAT": "text",
    }
    return subprocess.run(
        [sys.executable, "-m", "vsbatch", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert 2 == done.returncode, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert 1 == len(lines), lines
    for word in words:
        assert word in lines[0]


class TestFullDataDisk:
    def test_commands_say_so_and_leave_no_server(self, small_disk: Path) -> None:
        """On a full data disk, each command is one line with exit 2, and no embedded server
        or temporary file is left behind (never two servers on one directory)."""
        data_dir = small_disk / "dd"
        assert 0 == vsbatch("status", data_dir=data_dir).returncode  # its server ran, and stopped
        assert [] == servers_in(small_disk)
        fill(small_disk)

        for _ in range(2):
            done = vsbatch("status", data_dir=data_dir)

            assert_one_line(done, "disk", "VSBATCH_DATA_DIR")
            assert [] == servers_in(small_disk)
        assert [] == sorted(p.name for p in (data_dir / "redis").glob(".server.json*"))


class TestUnusableDataDir:
    @pytest.mark.parametrize("kind", ["a file", "under /proc"])
    def test_one_line_naming_the_setting(self, tmp_path: Path, kind: str) -> None:
        """A data directory that cannot be made is one line naming VSBATCH_DATA_DIR, exit 2."""
        if kind == "a file":
            data_dir: Path | str = tmp_path / "afile"
            (tmp_path / "afile").write_text("")
        else:
            data_dir = "/proc/x"

        assert_one_line(vsbatch("status", data_dir=data_dir), "VSBATCH_DATA_DIR")

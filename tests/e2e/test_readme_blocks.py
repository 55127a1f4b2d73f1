"""The README's runnable shell blocks, run as written against the test emulator (issue 13).

A block is marked runnable by an HTML comment on the line right before its fence::

    <!-- runnable -->
    ```bash
    uv run vsbatch plan updates.csv
    ```

GitHub renders an HTML comment as nothing and leaves the fence alone, so the marked README
looks exactly as before and keeps its highlighting (a fence info string such as
``bash runnable`` shows up in raw views and trips renderers that take the whole string as the
language). The comment can also say what each command exits with, one word per command in
order: ``<!-- runnable exits="1 skip" -->``. A word is the exit status the README documents for
that command, ``skip`` for one the test cannot run (the README's text says why), or ``bg`` for
a foreground server (``vsbatch worker``) that the test starts in the background and stops
with SIGTERM at the block's end. Without ``exits`` every command must exit 0.

Each block runs in a fresh folder holding a copy of ``examples/`` and, as ``updates.csv``, the
README's own CSV example (its sessions seeded in the emulator), with ``bash -e``. ``uv run
vsbatch`` and ``vsbatch`` run the test interpreter's ``python -m vsbatch``; the README's
placeholders (``sk_test_...``, the fleet's Redis URL, ``<batch>``) become the test's key, the
test Redis and the batch id the block's ``submit`` printed. Only ``VSBATCH_STRIPE_API_BASE``
(the emulator) and the key are set beforehand: Redis is the embedded one, as on a fresh clone.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import TEST_API_KEY
from tests.helpers import outside_env

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
MARKER = re.compile(r"^<!--\s*runnable\b(?P<attrs>.*?)-->\s*$")
EXITS = re.compile(r'^\s*(?:exits="(?P<exits>[^"]*)")?\s*$')
FENCE = re.compile(r"^```(?P<info>\S*)")
BATCH_VAR = '"$BATCH"'
# Background servers are stopped, and waited for, however the script ends.
PRELUDE = """__bg=()
__stop() { for p in "${__bg[@]}"; do kill -TERM "$p" || true; done; wait || true; }
trap __stop EXIT"""


@dataclass(frozen=True)
class Block:
    """One marked shell block: where it is, its commands and what each one exits with."""

    heading: str
    index: int  # 1-based among the marked blocks under the same heading
    line: int  # the fence's line number in the README
    commands: tuple[str, ...]
    exits: tuple[str, ...]  # per command: an exit status, "skip" or "bg"

    @property
    def id(self) -> str:
        """A pytest id: the heading as a slug and the index."""
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")
        return f"{slug}-{self.index}"


def commands_of(lines: list[str]) -> list[str]:
    """The commands of a block body: blank and comment lines dropped, ``\\`` lines joined."""
    commands: list[str] = []
    pending = ""
    for line in lines:
        if pending:
            pending += "\n" + line
        elif line.strip() and not line.lstrip().startswith("#"):
            pending = line
        if pending and not pending.endswith("\\"):
            commands.append(pending)
            pending = ""
    if pending:
        commands.append(pending)
    return commands


def _exits(attrs: str, commands: list[str], line: int) -> tuple[str, ...]:
    found = EXITS.match(attrs)
    if found is None:
        raise ValueError(f"README line {line}: unknown runnable marker attributes: {attrs!r}")
    words = (found.group("exits") or " ".join("0" * len(commands))).split()
    bad = [w for w in words if w not in ("skip", "bg") and not (w.isdigit() and int(w) < 256)]
    if bad or len(words) != len(commands):
        raise ValueError(
            f"README line {line}: exits={words} must give one status, 'skip' or 'bg' for each"
            f" of the block's {len(commands)} commands"
        )
    return tuple(words)


def extract_blocks(text: str) -> list[Block]:
    """The README's shell blocks marked runnable, in order.

    Raises:
        ValueError: A marker is not followed by a shell fence, or its ``exits`` does not fit.
    """
    lines = text.splitlines()
    blocks: list[Block] = []
    heading, per_heading, in_fence = "", 0, False
    i = 0
    while i < len(lines):
        line = lines[i]
        in_fence ^= line.startswith("```")
        if not in_fence and re.match(r"#{1,6} ", line):
            heading, per_heading = line.lstrip("#").strip(), 0
        marker = None if in_fence else MARKER.match(line)
        fence = FENCE.match(lines[i + 1]) if marker and i + 1 < len(lines) else None
        if marker and (fence is None or fence.group("info") not in ("bash", "sh", "shell")):
            raise ValueError(f"README line {i + 1}: a runnable marker must precede a ```bash fence")
        if marker and fence:
            end = lines.index("```", i + 2)
            commands = commands_of(lines[i + 2 : end])
            per_heading += 1
            exits = _exits(marker.group("attrs"), commands, i + 1)
            blocks.append(Block(heading, per_heading, i + 2, tuple(commands), exits))
            i = end
        i += 1
    return blocks


def csv_example(text: str) -> str:
    """The README's first ```csv block (the CSV section's example)."""
    found = re.search(r"^```csv\n(.*?)^```$", text, flags=re.M | re.S)
    assert found is not None, "README has no ```csv example"
    return found.group(1)


def script_for(block: Block, placeholders: dict[str, str], stdout_file: Path) -> str:
    """A bash script that runs the block's commands and checks each one's exit status."""
    out = [f"__out={shlex.quote(str(stdout_file))}", PRELUDE]
    for n, (command, expected) in enumerate(zip(block.commands, block.exits, strict=True)):
        if expected == "skip":
            continue
        for text, value in placeholders.items():
            command = command.replace(text, value)
        shown = shlex.quote(command)
        out.append(f"echo + {shown} >&2")
        if expected == "bg":
            # A group, so that a trailing comment does not swallow the '&'; exec, so that $! is
            # the server itself and the trap's SIGTERM reaches it.
            out.append(f"{{ exec {command}\n}} &\n__bg+=($!)")
            continue
        # The group runs in this shell (exports stay) and its stdout is kept for the batch id.
        out.append(f'__rc=0\n{{ {command}\n}} >"$__out" || __rc=$?\ncat "$__out"')
        if re.search(r"\bvsbatch submit\b", command):
            out.append('BATCH="$(tail -n 1 "$__out")"')
        out.append(
            f'if [ "$__rc" -ne {expected} ]; then echo "README command {n + 1}" {shown}'
            f' "exited $__rc, expected {expected}" >&2; exit 99; fi'
        )
    return "\n".join(out) + "\n"


def _blocks() -> list[Block]:
    return extract_blocks(README.read_text(encoding="utf-8"))


@pytest.fixture
def clone(tmp_path: Path, emulator: Any) -> Path:
    """A fresh folder like a clone: ``examples/``, and the README's CSV as ``updates.csv``
    whose sessions await input in the emulator."""
    folder = tmp_path / "clone"
    shutil.copytree(ROOT / "examples", folder / "examples")
    text = csv_example(README.read_text(encoding="utf-8"))
    (folder / "updates.csv").write_text(text, encoding="utf-8")
    ids = [line.split(",")[0] for line in text.splitlines()[1:]]
    emulator.seed(count=len(ids), ids=ids, status="requires_input")
    return folder


def _vsbatch_on_path(bin_dir: Path) -> Path:
    """A ``vsbatch`` on PATH that runs this interpreter's ``python -m vsbatch``."""
    bin_dir.mkdir()
    exe = bin_dir / "vsbatch"
    exe.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m vsbatch "$@"\n')
    exe.chmod(0o755)
    return bin_dir


def run_block(
    block: Block, cwd: Path, env: dict[str, str], placeholders: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run the block's script with ``bash -e`` in its own process group (killed on timeout)."""
    script = cwd.parent / "block.sh"
    script.write_text(script_for(block, placeholders, cwd.parent / "stdout"))
    proc = subprocess.Popen(
        ["bash", "-e", str(script)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=40)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        # The script, or a process it left behind holding the pipes, is still running.
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        stderr += "\n(the block, or a process it started, was still running after 40 s)"
        code = -signal.SIGKILL
    return subprocess.CompletedProcess(proc.args, code, stdout, stderr)


class TestExtractor:
    def test_finds_the_readmes_marked_blocks(self) -> None:
        """The README has marked blocks, and each has at least one command to run."""
        blocks = _blocks()

        assert (True, True) == (len(blocks) > 0, all(b.commands for b in blocks))

    def test_an_unmarked_block_is_not_extracted(self) -> None:
        """Only the block under the marker is extracted, with its per-command exits."""
        text = (
            "# Title\n```bash\nvsbatch unmarked\n```\n"
            '<!-- runnable exits="1 skip" -->\n```bash\n# a comment\nvsbatch demo  # why\n'
            "uv run pytest \\\n  -q\n```\n"
        )

        blocks = extract_blocks(text)

        assert [("title-1", ("vsbatch demo  # why", "uv run pytest \\\n  -q"), ("1", "skip"))] == [
            (b.id, b.commands, b.exits) for b in blocks
        ]

    def test_a_marker_whose_exits_do_not_fit_is_refused(self) -> None:
        """A marker giving two statuses for a one-command block fails loudly, not silently."""
        text = '## Run\n<!-- runnable exits="0 1" -->\n```bash\nvsbatch doctor\n```\n'

        with pytest.raises(ValueError, match=r"README line 2: exits=.* 1 commands"):
            extract_blocks(text)


@pytest.mark.parametrize("block", _blocks(), ids=lambda b: b.id)
def test_readme_block_runs_as_shown(
    block: Block,
    clone: Path,
    emulator: Any,
    redis_url: str,
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    """Every command of a marked README block exits with the status the README gives, and
    none prints a traceback."""
    # Given a fresh folder, the emulator as the API base and the test key, nothing else set
    bin_dir = _vsbatch_on_path(tmp_path / "bin")
    env = outside_env(
        VSBATCH_STRIPE_API_BASE=emulator.url,
        VSBATCH_STRIPE_API_KEY=TEST_API_KEY,
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    placeholders = {
        "uv run vsbatch": "vsbatch",
        "sk_test_...": TEST_API_KEY,
        "rediss://:password@redis.internal:6380/0": redis_url,
        "<batch>": BATCH_VAR,
    }

    # When the block runs as written
    ran = run_block(block, clone, env, placeholders)

    # Then it ends 0 (each command's status was checked in the script) without a traceback
    output = ran.stdout + ran.stderr
    assert (0, False) == (ran.returncode, "Traceback" in output), (
        f"README line {block.line}:\n{output}"
    )

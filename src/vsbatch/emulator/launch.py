"""Starting the emulator from a command line: config from flags, seeding, the ids it prints.

Shared by ``vsbatch emulator`` and ``python -m vsbatch.emulator``. It owns the command-line
contract: every user error is one ``error:`` line on stderr and exit code 2; the seeded ids go
to stdout (one per line) or to the ``--seed-file`` CSV, only once the socket listens.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from vsbatch.emulator.fault_spec import parse_fail_rate

if TYPE_CHECKING:
    from vsbatch.emulator.config import EmulatorConfig
    from vsbatch.emulator.state import Emulator, SeedRequest

__all__ = ["LaunchError", "ServeOptions", "read_seed_ids", "start"]


class LaunchError(Exception):
    """A command-line mistake, worded as the one line the user sees (exit code 2)."""


@dataclass(frozen=True)
class ServeOptions:
    """What the command line asked for.

    Args:
        host: Interface to bind.
        port: TCP port (0: any free one).
        sessions: ``requires_input`` sessions to seed with fresh ids.
        seed_file: Where to write the seeded ids (a CSV with an ``id`` column) instead of stdout.
        seed_from: A CSV whose ``id`` column names the sessions to seed, exactly.
        fail_rate: A ``--fail-rate`` spec (``503=0.05,hang=0.01``).
        fields: Other EmulatorConfig fields set by flags (``latency_ms``, ...); they win over
            ``fail_rate`` for the same field.
        access_log: Log every request.
    """

    host: str = "127.0.0.1"
    port: int = 12111
    sessions: int = 0
    seed_file: Path | None = None
    seed_from: Path | None = None
    fail_rate: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    access_log: bool = False


def build_config(options: ServeOptions) -> EmulatorConfig:
    """The start-up config, or a LaunchError naming the flag at fault."""
    from pydantic import ValidationError

    from vsbatch.emulator.config import EmulatorConfig

    fields: dict[str, Any] = {}
    if options.fail_rate is not None:
        try:
            fields.update(parse_fail_rate(options.fail_rate))
        except ValueError as exc:
            raise LaunchError(f"--fail-rate: {exc}") from None
    fields.update({k: v for k, v in options.fields.items() if v is not None})
    try:
        return EmulatorConfig.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        flag = "--" + "-".join(str(part) for part in first["loc"]).replace("_", "-")
        raise LaunchError(f"{flag}: {first['msg']} (got {first['input']!r})") from None


def read_seed_ids(path: Path) -> tuple[list[SeedRequest], int]:
    """The seeding requests for the distinct ``vs_`` ids of a CSV's ``id`` column.

    A ``stripe_account`` column, when present, puts each session under that account (as the
    batch will address it). Returns the requests and how many rows were skipped because their
    id is not a session id (``vsbatch run`` rejects those rows anyway).

    Raises:
        LaunchError: The file cannot be read, is not UTF-8 CSV, or has no ``id`` column.
    """
    from vsbatch.emulator.state import SeedRequest

    try:
        text = path.read_text(encoding="utf-8-sig")
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except OSError as exc:
        raise LaunchError(f"--seed-from {path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise LaunchError(f"--seed-from {path}: not UTF-8 text") from None
    except csv.Error as exc:
        raise LaunchError(f"--seed-from {path}: not a valid CSV ({exc})") from None
    header = [name.strip() for name in rows[0]] if rows else []
    if "id" not in header:
        raise LaunchError(
            f"--seed-from {path}: no 'id' column; give a batch CSV or a --seed-file with one"
        )
    at = header.index("id")
    account_at = header.index("stripe_account") if "stripe_account" in header else None
    by_account: dict[str, list[str]] = {}
    seen: set[str] = set()
    skipped = 0
    for row in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue
        cells = [cell.strip() for cell in row] + [""] * (len(header) - len(row))
        sid = cells[at]
        if sid in seen:
            continue
        if not sid.startswith("vs_") or len(sid) < 4:
            skipped += 1
            continue
        seen.add(sid)
        account = cells[account_at] if account_at is not None else ""
        by_account.setdefault(account, []).append(sid)
    requests = [SeedRequest(ids=ids, account=acct or None) for acct, ids in by_account.items()]
    return requests, skipped


def check_seed_file(path: Path) -> None:
    """Refuse a ``--seed-file`` target that would destroy something (a batch CSV, say).

    Raises:
        LaunchError: The path is a directory, its folder is missing or read-only, or it is an
            existing file whose first line is not ``id`` (not a seed file written earlier).
    """
    if path.is_dir():
        raise LaunchError(f"--seed-file {path}: is a directory; give a file name")
    folder = path.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise LaunchError(f"--seed-file {path}: its folder {folder} is missing or not writable")
    if not path.exists():
        return
    try:
        with path.open(encoding="utf-8-sig") as existing:
            first = existing.readline().strip()
    except (OSError, UnicodeDecodeError):
        first = None
    if first not in ("", "id"):
        raise LaunchError(
            f"--seed-file {path}: exists and is not a seed file (its first line is not 'id'),"
            " so it is left alone; to seed the ids of a batch file, use --seed-from"
        )


def write_seed_file(path: Path, ids: list[str]) -> None:
    """Write ``id`` and one id per line, whole or not at all (a temporary file renamed)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write("id\n" + "".join(f"{sid}\n" for sid in ids))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def prepare(options: ServeOptions) -> tuple[Emulator, list[str], int]:
    """Check every flag and build the seeded emulator: (emulator, seeded ids, skipped rows).

    Raises:
        LaunchError: A bad flag, seed file or seed source.
    """
    from vsbatch.emulator.state import Emulator

    config = build_config(options)
    seeds: list[SeedRequest] = []
    skipped = 0
    if options.seed_from is not None:
        seeds, skipped = read_seed_ids(options.seed_from)
    if options.seed_file is not None:
        check_seed_file(options.seed_file)
    try:
        emulator = Emulator(config, sessions=options.sessions, seeds=seeds)
    except ValueError as exc:  # a --seed-from id also drawn for --sessions (vanishingly rare)
        raise LaunchError(f"--seed-from {options.seed_from}: {exc}") from None
    return emulator, [session.id for session in emulator.world.sessions], skipped


def start(options: ServeOptions, *, out: TextIO, err: TextIO) -> int:
    """Serve in the foreground until Ctrl-C; return the exit code (2 after a one-line error)."""
    from vsbatch.emulator.server import serve

    def fail(message: str) -> int:
        print(f"error: {message}", file=err, flush=True)
        return 2

    try:
        emulator, ids, skipped = prepare(options)
    except LaunchError as exc:
        return fail(str(exc))

    def ready(url: str) -> None:
        # The seed file first, then the banner: a script waiting for either finds both ready.
        _save_seed_ids(options, ids)
        _announce(url, options, ids, skipped, out=out, err=err)

    try:
        serve(
            emulator.config,
            host=options.host,
            port=options.port,
            access_log=options.access_log,
            emulator=emulator,
            ready=ready,
        )
    except LaunchError as exc:
        return fail(str(exc))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return fail(f"cannot listen on {options.host}:{options.port}: {reason}; {_bind_hint(exc)}")
    return 0


def _save_seed_ids(options: ServeOptions, ids: list[str]) -> None:
    """Write the ``--seed-file``, if asked for one."""
    if options.seed_file is None:
        return
    try:
        write_seed_file(options.seed_file, ids)
    except OSError as exc:
        raise LaunchError(f"--seed-file {options.seed_file}: {exc.strerror}") from None


def _announce(
    url: str, options: ServeOptions, ids: list[str], skipped: int, *, out: TextIO, err: TextIO
) -> None:
    """The banner on stderr, then the seeded ids: on stdout, or where the seed file went."""
    print(f"emulator on {url} (Ctrl-C to stop)", file=err, flush=True)
    if skipped:
        rows = "row" if skipped == 1 else "rows"
        print(f"--seed-from: skipped {skipped} {rows} whose id is not vs_...", file=err)
    if options.seed_file is not None:
        print(f"wrote {len(ids)} session ids to {options.seed_file}", file=err, flush=True)
    elif ids:
        print("\n".join(ids), file=out, flush=True)


def _bind_hint(exc: OSError) -> str:
    """How to fix a failed bind, by its cause."""
    if exc.errno == errno.EADDRINUSE:
        return "stop what uses it or pass --port 0 (any free port)"
    if exc.errno == errno.EACCES:
        return "ports below 1024 need privileges: pass a higher --port"
    return "--host must be an address of this machine (127.0.0.1, 0.0.0.0, ::1)"

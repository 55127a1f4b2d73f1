"""Liveness files for container healthchecks (``VSBATCH_HEALTH_FILE``).

A worker touches the file each time its heartbeat reaches Redis (see ``liveness``), beat each
time its scheduler ticks; the healthcheck, ``python -m vsbatch.ops.health FILE MAX_AGE``,
calls the process unhealthy once the file is missing or older than ``MAX_AGE`` seconds. The
check reads one timestamp: it needs no Redis, no settings and no Stripe key.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

__all__ = ["is_fresh", "main", "touch"]

log = logging.getLogger(__name__)


def touch(path: Path) -> None:
    """Set ``path``'s modification time to now, creating it (a failure is logged, not raised:
    the healthcheck then says what is wrong)."""
    try:
        path.touch()
        os.utime(path)
    except OSError as exc:
        log.warning("cannot touch the health file %s: %s", path, exc.strerror or exc)


def is_fresh(path: Path, max_age: float, now: float | None = None) -> bool:
    """True when ``path`` exists and was touched within the last ``max_age`` seconds."""
    try:
        touched = path.stat().st_mtime
    except OSError:
        return False
    return (time.time() if now is None else now) - touched <= max_age


def main(argv: list[str]) -> int:
    """``FILE MAX_AGE`` -> exit 0 when fresh, 1 (with one line) when not, 2 on bad usage."""
    if len(argv) != 2:
        print("usage: python -m vsbatch.ops.health FILE MAX_AGE_SECONDS", file=sys.stderr)
        return 2
    path, max_age = Path(argv[0]), float(argv[1])
    if is_fresh(path, max_age):
        return 0
    print(f"unhealthy: {path} missing or older than {max_age:g} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

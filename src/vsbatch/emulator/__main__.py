"""``python -m vsbatch.emulator``: run the emulator in the foreground with flags for its config.

Every :class:`EmulatorConfig` field has its own flag here; seeding, ``--fail-rate`` and the
errors are handled by :mod:`vsbatch.emulator.launch`, as for ``vsbatch emulator``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from vsbatch.emulator.config import EmulatorConfig
from vsbatch.emulator.fault_spec import FAULT_KINDS
from vsbatch.emulator.launch import ServeOptions, start

__all__ = ["main"]


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vsbatch.emulator", description="Stripe Identity emulator (test mode)."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default loopback)")
    parser.add_argument("--port", type=int, default=12111, help="0 picks a free port")
    parser.add_argument("--sessions", type=int, default=0, help="requires_input sessions to seed")
    parser.add_argument("--seed-file", type=Path, help="write the seeded ids to this CSV")
    parser.add_argument("--seed-from", type=Path, help="seed the ids of this CSV's id column")
    parser.add_argument(
        "--fail-rate",
        metavar="KIND=SHARE,...",
        help="fault shares; kinds: " + ", ".join(FAULT_KINDS) + " (the *-rate flags win)",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")
    for name, field in EmulatorConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        default = field.default
        if isinstance(default, bool) and field.annotation is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        elif isinstance(default, bool):
            parser.add_argument(flag, default=None, help="true, false or a share in 0..1")
        elif isinstance(default, tuple):
            parser.add_argument(flag, type=_comma_list, default=None, help="comma-separated")
        else:
            parser.add_argument(flag, type=type(default), default=None, help=f"default {default}")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Parse flags, build the config and serve until interrupted (exit 2 on a bad flag)."""
    args = vars(_parser().parse_args(argv))
    options = ServeOptions(
        host=args.pop("host"),
        port=args.pop("port"),
        sessions=args.pop("sessions"),
        seed_file=args.pop("seed_file"),
        seed_from=args.pop("seed_from"),
        fail_rate=args.pop("fail_rate"),
        access_log=args.pop("access_log"),
        fields=args,
    )
    sys.exit(start(options, out=sys.stdout, err=sys.stderr))


if __name__ == "__main__":
    main()

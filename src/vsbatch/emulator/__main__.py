"""``python -m vsbatch.emulator``: run the emulator in the foreground with flags for its config."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from vsbatch.emulator.config import EmulatorConfig
from vsbatch.emulator.server import serve

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m vsbatch.emulator", description="Stripe Identity emulator (test mode)."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default loopback)")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--sessions", type=int, default=0, help="requires_input sessions to seed")
    parser.add_argument("--access-log", action="store_true", help="log every request")
    for name, field in EmulatorConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        default = field.default
        if isinstance(default, bool) and field.annotation is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        elif isinstance(default, bool):
            parser.add_argument(flag, default=None, help="true, false or a share in 0..1")
        else:
            parser.add_argument(flag, type=type(default), default=None, help=f"default {default}")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Parse flags, build the config and serve until interrupted."""
    args = vars(_parser().parse_args(argv))
    host, port, sessions = args.pop("host"), args.pop("port"), args.pop("sessions")
    access_log = args.pop("access_log")
    fields = {name: value for name, value in args.items() if value is not None}
    serve(
        EmulatorConfig.model_validate(fields),
        host=host,
        port=port,
        sessions=sessions,
        access_log=access_log,
    )


if __name__ == "__main__":
    main()

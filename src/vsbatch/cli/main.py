"""The ``vsbatch`` command line (typer + rich): the console-script entry point.

Importing this module registers every command on :data:`cli` (defined in
:mod:`vsbatch.cli.app`, which the command modules import: no cycles).
"""

from __future__ import annotations

from vsbatch.cli import batches, explain, migrations, results, services, web
from vsbatch.cli.app import cli

__all__ = ["cli", "main"]

# The command modules register themselves on import; named here so nothing looks unused.
COMMAND_MODULES = (batches, services, migrations, explain, results, web)


def main() -> None:
    """Console-script entry point."""
    # One program name however it is started (``python -m vsbatch`` too): shell completion
    # scripts name it, and call it back through ``_VSBATCH_COMPLETE``.
    cli(prog_name="vsbatch")

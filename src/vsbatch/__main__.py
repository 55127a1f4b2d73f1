"""``python -m vsbatch``: the same as the ``vsbatch`` command."""

from vsbatch.cli.main import main

main()

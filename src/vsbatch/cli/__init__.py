"""The command line: one module per command group, and what the commands print."""

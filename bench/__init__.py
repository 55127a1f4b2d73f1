"""vsbatch's benchmark suite: ``uv run python -m bench [--quick|--full] [--only NAME]``.

Benchmarks are not tests: each scenario starts its own emulator, embedded Redis and worker
subprocesses, measures vsbatch next to a baseline in the same run, and prints ratios (the
machine is shared and noisy, so absolute times drift; ratios measured side by side do not).
"""

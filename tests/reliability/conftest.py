"""Reliability fixtures: the end-to-end tier's workers, producer and environment."""

from tests.e2e.conftest import env, producer, workers

__all__ = ["env", "producer", "workers"]

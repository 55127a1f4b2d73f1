"""Declarative migrations: their specs, schedules and runs."""

"""Redis: every key, script and record of the ledger, locks, rate limits and liveness, and the
embedded server."""

"""The ledger's, locks' and rate limiter's Lua scripts, loaded as package resources."""

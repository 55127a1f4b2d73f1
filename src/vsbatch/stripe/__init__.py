"""Talking to Stripe: the HTTP client, its deadlines and retry rules, where the key may go, and
the preflight."""

"""Alembic's script directory of the results store (``vsbatch.results:migrations``).

Shipped inside the package, so an installed wheel migrates its database as a checkout does;
:func:`vsbatch.results.migrate.upgrade` runs it programmatically on every open.
"""

"""The results store: finished batches and rows archived from the Redis ledger into SQL.

SQLite in the data directory by default, PostgreSQL with ``VSBATCH_RESULTS_URL``. Modules:
:mod:`~vsbatch.results.schema` (tables), :mod:`~vsbatch.results.views` (SQL views),
:mod:`~vsbatch.results.engine` (URL, engine, migrations), :mod:`~vsbatch.results.records`
(ledger values <-> columns), :mod:`~vsbatch.results.store` (:class:`ResultsStore`), and
:mod:`~vsbatch.results.archiver` (Redis -> SQL). Nothing is imported here: SQLAlchemy loads
only when a command uses the store.
"""

"""A row's middle stage: the Celery edge (app, tasks, messages) and the plain code that applies
rows."""

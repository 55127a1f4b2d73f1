"""The live web dashboard (``vsbatch web``): batches, rows, sessions, retry and cancel.

A module per noun: ``app`` (the Starlette routes), ``auth`` (the token, CSRF and origin
checks), ``pages`` (the HTML), ``events`` (the live counters as server-sent events),
``data`` (what pages read and buttons do), ``server`` (uvicorn on a loopback socket).
Nothing here is imported by ``vsbatch --help``.
"""

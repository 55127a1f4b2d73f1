"""A row's first stage: reading input (CSV, migrations, the app API) and staging it as a batch."""

"""The domain's values: rows and their outcomes, and the update a row applies."""

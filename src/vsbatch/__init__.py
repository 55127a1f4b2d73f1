"""vsbatch."""

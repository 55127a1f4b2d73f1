"""A row's last stage and the operator's view: reports, reconciliation, metrics, logs, redaction."""

"""ADP Workforce Now (HRIS, REST over mutual TLS)."""

CONNECTOR = "AdpSource"

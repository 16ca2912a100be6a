"""Any JSON API, declared in the config."""

CONNECTOR = "RestSource"

"""BambooHR (HRIS)."""

CONNECTOR = "BambooHRSource"

"""CSV/JSON exports."""

CONNECTOR = "FileSource"

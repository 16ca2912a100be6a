"""Workable (ATS)."""

CONNECTOR = "WorkableSource"

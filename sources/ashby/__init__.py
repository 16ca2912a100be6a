"""Ashby (ATS)."""

CONNECTOR = "AshbySource"

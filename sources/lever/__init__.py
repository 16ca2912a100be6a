"""Lever (ATS)."""

CONNECTOR = "LeverSource"

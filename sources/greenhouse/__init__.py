"""Greenhouse Harvest (ATS)."""

CONNECTOR = "GreenhouseSource"

"""Greenhouse Harvest (ATS)."""

CONNECTOR = "GreenhouseSource"
KIND = "ats"  # its hires are pre-hires: an HRIS record of the same person outranks it

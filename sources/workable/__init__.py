"""Workable (ATS)."""

CONNECTOR = "WorkableSource"
KIND = "ats"  # its hires are pre-hires: an HRIS record of the same person outranks it

"""Workday (HRIS, SOAP)."""

CONNECTOR = "WorkdaySource"

"""Policies: which worker gets which account and groups in which target, and why."""

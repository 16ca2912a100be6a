"""django-scim2 (15five's SCIM provider for Django, from PyPI) in a tiny Django project, as a SCIM app
for the tests: `python -m tests.djscim.serve` (see tests/djscim_server.py)."""

"""The engine's one HTTP server: health, metrics, API, console, webhooks (`app`).

Nothing is imported here: `sync --once` needs only `metrics`, and should not pay for FastAPI.
"""

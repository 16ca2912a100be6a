"""The engine's one HTTP server: health, metrics, API, console, webhooks."""

from provisioner.engine.runtime.http.app import bind, http_app, serve_until, server, stop_on_signals
from provisioner.engine.runtime.http.metrics import Metrics

__all__ = ["Metrics", "bind", "http_app", "serve_until", "server", "stop_on_signals"]

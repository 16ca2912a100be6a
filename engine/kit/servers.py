"""Run an ASGI or WSGI app on a free loopback port in a background thread (emulators, demo, tests)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import uvicorn


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing answered on 127.0.0.1:{port} within {timeout:.0f}s") from None
            time.sleep(0.02)


class BackgroundServer:
    def __init__(self, port: int, stop: Callable[[], None], scheme: str = "http"):
        self.port = port
        self.url = f"{scheme}://127.0.0.1:{port}"
        self._stop = stop

    def stop(self) -> None:
        self._stop()

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve_asgi(app: Any, port: int | None = None, **tls: Any) -> BackgroundServer:
    """`tls` are uvicorn's ssl_* settings (ssl_certfile, ssl_keyfile, ssl_ca_certs, ssl_cert_reqs):
    with them the app is served over HTTPS, e.g. requiring a client certificate."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", **tls)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"asgi-{port}", daemon=True)
    thread.start()
    wait_for_port(port)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=5)

    return BackgroundServer(port, stop, "https" if tls else "http")


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any) -> None:
        return None


def serve_wsgi(app: Any, port: int | None = None) -> BackgroundServer:
    port = port or free_port()
    httpd = make_server("127.0.0.1", port, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    # shutdown() waits for the loop to look at its flag, every poll_interval (0.5 s by default):
    # half a second at the end of every test that serves an app.
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), name=f"wsgi-{port}", daemon=True)
    thread.start()

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()

    return BackgroundServer(port, stop)


def scim_app() -> Any:
    """An in-memory scim2-server WSGI app with every feature on (the demo's and tests' SCIM app)."""
    from scim2_server.applications.wsgi import WSGIApplication
    from scim2_server.memory import InMemoryStorage
    from scim2_server.service import ScimService
    from scim2_server.utils import load_default_provider

    service = ScimService(load_default_provider())
    return WSGIApplication(InMemoryStorage(), service.provider, service)


@contextmanager
def scim_server_process(service_provider_config: str | None = None) -> Iterator[str]:
    """`scim2-server`'s own CLI in a subprocess (wsgiref, one request at a time), on a free port.

    The listen backlog is raised from socketserver's 5 to 128: with a handful of clients connecting
    at once a backlog of 5 drops SYNs, and each drop costs a one-second retransmit."""
    port = free_port()
    launcher = (
        "import sys, wsgiref.simple_server as w; w.WSGIServer.request_queue_size = 128; "
        "from scim2_server.testserver.cli import main; sys.argv = ['scim2-server'] + sys.argv[1:]; main()"
    )
    args = [sys.executable, "-c", launcher, "--port", str(port)]
    if service_provider_config:
        args += ["--service-provider-config", service_provider_config]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)

"""Create the database and serve the project over HTTP on loopback
(threaded wsgiref); prints "listening" once it accepts."""

from __future__ import annotations

import os
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.djscim.settings")

import django

django.setup()

from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.core.management import call_command  # noqa: E402


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128


class Quiet(WSGIRequestHandler):
    def log_request(self, *args: object) -> None:
        return None


def main() -> None:
    call_command("migrate", run_syncdb=True, verbosity=0)
    httpd = make_server("127.0.0.1", int(os.environ["DJSCIM_PORT"]), WSGIHandler(), Server, Quiet)
    print("listening", flush=True)
    sys.stdout.close()
    httpd.serve_forever()


if __name__ == "__main__":
    main()

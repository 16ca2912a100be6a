"""Log output: rich on a terminal, plain lines otherwise, one JSON object per line with
`--log-format json` (or PROVISIONER_LOG_FORMAT=json) for log shippers."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.logging import RichHandler

from provisioner.engine.cli.common import err
from provisioner.engine.cli.safe import SafeMessages
from provisioner.engine.contracts.tracecontext import current_trace_id

# The ids a log call may pass with extra=: they identify, and carry nothing of a person's data.
IDS = ("event_id", "worker_id", "target", "source")
NOISY = ("aiokafka", "httpx", "httpcore", "apscheduler", "faker", "uvicorn.error", "alembic")


class LogFormat(StrEnum):
    auto = "auto"
    rich = "rich"
    plain = "plain"
    json = "json"


LogFormatOpt = Annotated[
    LogFormat,
    typer.Option(
        "--log-format",
        envvar="PROVISIONER_LOG_FORMAT",
        help="auto: rich on a terminal, plain otherwise; json: one object per line.",
    ),
]


class LineFormatter(SafeMessages, logging.Formatter):
    """A plain or rich log line: control characters from the data cannot start another line. A
    line written within a change's trace ends with the trace id's first 8 digits (`provisioner
    log` and the console show the whole id, which starts with them)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        trace_id = current_trace_id()
        return f"{line} [trace {trace_id[:8]}]" if trace_id else line


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record comes, not what it was at setup: a command
    run in-process after another (a test runner, an embedding tool) must not log into a closed
    stream."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in IDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if trace_id := current_trace_id():
            line["trace_id"] = trace_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def setup(verbose: bool, fmt: LogFormat = LogFormat.auto) -> None:
    if fmt is LogFormat.auto:
        fmt = LogFormat.rich if sys.stderr.isatty() else LogFormat.plain
    handler: logging.Handler
    if fmt is LogFormat.rich:
        handler = RichHandler(console=err, show_path=False)
        handler.setFormatter(LineFormatter("%(message)s"))
    else:
        handler = StderrHandler()
        plain = LineFormatter("%(asctime)sZ %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
        plain.converter = time.gmtime
        handler.setFormatter(JsonFormatter() if fmt is LogFormat.json else plain)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not verbose:
        logging.getLogger("provisioner.kafka").setLevel(logging.WARNING)

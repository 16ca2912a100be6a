"""Log output: rich on a terminal, plain lines otherwise, one JSON object per line with
`--log-format json` (or PROVISIONER_LOG_FORMAT=json) for log shippers."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import typer
from rich.logging import RichHandler

from provisioner.engine.cli.common import err

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
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def setup(verbose: bool, fmt: LogFormat = LogFormat.auto) -> None:
    if fmt is LogFormat.auto:
        fmt = LogFormat.rich if sys.stderr.isatty() else LogFormat.plain
    handler: logging.Handler
    if fmt is LogFormat.rich:
        handler = RichHandler(console=err, show_path=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        plain = logging.Formatter("%(asctime)sZ %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
        plain.converter = time.gmtime
        handler.setFormatter(JsonFormatter() if fmt is LogFormat.json else plain)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not verbose:
        logging.getLogger("provisioner.kafka").setLevel(logging.WARNING)

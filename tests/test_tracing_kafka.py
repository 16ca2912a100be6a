"""A hire's trace across two processes and the Kafka hop: this process polls and relays (spans
collected in memory), a `provisioner sync` process consumes and writes to a real scim2-server
(spans exported over OTLP/HTTP to a receiver here, decoded with opentelemetry-proto). One trace id
holds poll → outbox → Kafka publish → receive → plan → apply → SCIM POST and PATCH."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from provisioner.engine.config import Config
from provisioner.engine.kit.servers import serve_wsgi
from provisioner.engine.runtime.app import Runtime
from tests.flow import People, hire, until
from tests.processes import broker
from tests.tracetree import Span, collecting, finished, stop_collecting, tree

TOPIC = "provisioner.worker-events"


class Receiver:
    """An OTLP/HTTP traces endpoint that keeps what it is sent."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if environ.get("HTTP_CONTENT_ENCODING") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        with self._lock:
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    self.spans += [_decoded(span) for span in scope.spans]
        start_response("200 OK", [("Content-Type", "application/x-protobuf")])
        return [b""]


def _decoded(span: Any) -> Span:
    return Span(
        span.name,
        span.trace_id.hex(),
        span.span_id.hex(),
        span.parent_span_id.hex() or None,
        span.start_time_unix_nano,
        span.end_time_unix_nano,
        "consumer",
        {a.key: _value(a.value) for a in span.attributes},
        tuple(link.trace_id.hex() for link in span.links),
    )


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    return getattr(value, kind) if kind else None


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = collecting()
    yield exporter
    stop_collecting()


async def test_a_hire_is_one_trace_across_the_kafka_hop_and_two_processes(tmp_path: Path, scim_server, spans):
    people = People(tmp_path / "people.json")
    people.write(hire(1))
    receiver = Receiver()
    with broker() as bootstrap, serve_wsgi(receiver) as otlp:
        settings = {
            "store": {"url": f"sqlite:///{tmp_path / 's.db'}"},
            "kafka": {"bootstrap_servers": [bootstrap]},
            "sources": [{"name": "hr", "type": "file", "path": str(people.path)}],
            "targets": [{"name": "app", "type": "scim", "base_url": scim_server.url, "bulk": False}],
            "policies": [{"name": "everyone", "when": "true", "grant": [{"target": "app", "groups": ["staff"]}]}],
        }
        consumer = tmp_path / "consumer.yaml"
        telemetry = {"otlp_endpoint": f"{otlp.url}/v1/traces", "service_name": "provisioner-consumer"}
        consumer.write_text(yaml.safe_dump({**settings, "telemetry": telemetry}))
        async with Runtime(Config.model_validate(settings), consume=False) as runtime:
            assert len((await runtime.poll("hr")).events) == 1
            await until(lambda: not runtime.store.outbox.unpublished(10), "the relay to publish the hire")
            # The consumer: another process, while this one keeps the relay (its lease) to itself.
            code, log = await _sync(consumer)
            assert code == 0, log
    local = finished(spans, "poller")
    [poll] = [s for s in local if s.name == "poll hr"]
    everything = local + receiver.spans
    print(tree(everything, poll.trace_id))
    mine = {s.name: s for s in everything if s.trace_id == poll.trace_id}
    publish, receive = mine[f"publish {TOPIC}"], mine[f"receive {TOPIC}"]
    assert mine["outbox write"].parent_id == poll.span_id
    assert publish.parent_id == mine["outbox write"].span_id and publish.process == "poller"
    assert receive.parent_id == publish.span_id and receive.process == "consumer"  # the record's header
    assert mine["plan worker.hired"].parent_id == receive.span_id
    apply = mine["apply worker.hired"]
    requests = [s for s in everything if s.parent_id == apply.span_id]
    user_posts = [s for s in requests if s.name == "POST target app" and s.attributes["url.path"].endswith("/Users")]
    patches = [s for s in requests if s.name == "PATCH target app"]
    assert [s.attributes["http.response.status_code"] for s in user_posts] == [201]
    assert patches and all(s.attributes["http.response.status_code"] < 300 for s in patches)
    # The consumer's log lines name the same trace.
    told = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(line.get("trace_id") == poll.trace_id for line in told), log


async def _sync(config: Path) -> tuple[int | None, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "provisioner.engine.cli", "sync", "-c", str(config), "--log-format", "json", "--verbose"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout=90)
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    return process.returncode, out.decode()

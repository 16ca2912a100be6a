"""OpenTelemetry traces: one trace per change, from the poll to each app request.

A TracerProvider is always installed, so trace ids exist for log lines and the provisioning log;
spans are recorded and exported (OTLP/HTTP) only when `telemetry.otlp_endpoint` is set. A span is
only made under a parent that is sampled: with export off a hop just carries its parent's context
on (a few microseconds per event, no span objects), which keeps a 100,000-person sync as cheap as
without tracing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanKind, StatusCode

from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.contracts.models import Action
from provisioner.engine.contracts.tracecontext import current_traceparent, parse_traceparent, traceparent

log = logging.getLogger("provisioner.tracing")


TRACEPARENT = "traceparent"
_FIELD = b'"traceparent":"'  # how the stored event JSON carries it (contracts/events.py)
_LENGTH = 55
_EMAIL = "{email}"
_EMPTY = trace.set_span_in_context(trace.INVALID_SPAN)  # a root: whatever span is current is not its parent


def install(
    otlp_endpoint: str | None = None,
    service_name: str = "provisioner",
    sample_ratio: float = 1.0,
    processor: SpanProcessor | None = None,
) -> bool:
    """Install the process's TracerProvider (the `telemetry:` block's settings); once, as
    OpenTelemetry allows one per process. Returns whether this call installed it. `processor`
    replaces the OTLP export (tests collect spans in memory)."""
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return False
    exporting = processor is not None or otlp_endpoint is not None
    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name}),
        sampler=ParentBased(TraceIdRatioBased(sample_ratio)) if exporting else ALWAYS_OFF,
    )
    if processor is None and otlp_endpoint is not None:
        processor = BatchSpanProcessor(_otlp(otlp_endpoint))
    if processor is not None:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    if otlp_endpoint:
        log.info("traces are exported to %s", otlp_endpoint)
    return True


def _tracer() -> trace.Tracer:
    # Asked each time, not kept: OpenTelemetry's proxy tracer sticks to the first provider it saw.
    return trace.get_tracer_provider().get_tracer("provisioner")


def _otlp(endpoint: str) -> SpanExporter:
    # Imported only when exporting: protobuf and requests would add to every command's start.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint)


@contextmanager
def root(name: str, attributes: Mapping[str, Any], links: Sequence[str | None] = ()) -> Iterator[Span]:
    """A new trace (a poll, a retry, a deferred action firing), linked to the traces it follows on."""
    parents = [context for value in links if (context := parse_traceparent(value)) is not None]
    with _span(name, _EMPTY, SpanKind.INTERNAL, attributes, [Link(c) for c in parents]) as span:
        yield span


@contextmanager
def _span(
    name: str, parent: Context | None, kind: SpanKind, attributes: Mapping[str, Any] | None, links: Sequence[Link] = ()
) -> Iterator[Span]:
    """A span made current; a failure inside marks it with the exception's type only: the message
    may quote data (a person's email in an app's answer), and traces leave for another system."""
    with _tracer().start_as_current_span(
        name,
        context=parent,
        kind=kind,
        attributes=dict(attributes or {}),
        links=links,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except Exception as exc:
            span.set_status(StatusCode.ERROR, type(exc).__name__)
            raise


def new_trace(name: str, attributes: Mapping[str, Any], links: Sequence[str | None]) -> str | None:
    """The `traceparent` for an event that starts a new trace linked to earlier ones: a durable retry
    (linked to the change that failed), a deferred action firing (to the change that deferred it)."""
    with root(name, attributes, links):
        return current_traceparent()


@contextmanager
def continued(
    name: str, parent: str | None, attributes: Mapping[str, Any] | None = None, kind: SpanKind = SpanKind.INTERNAL
) -> Iterator[Span | None]:
    """A hop of a change elsewhere (the consumer, a later task): a span under the stored `parent`
    when that trace is sampled; otherwise the parent's context becomes current as it is (log lines
    still name the trace) and no span is made."""
    context = parse_traceparent(parent)
    if context is None:
        yield None
        return
    if not context.trace_flags.sampled:
        token = otel_context.attach(_carried(parent or ""))
        try:
            yield None
        finally:
            otel_context.detach(token)
        return
    with _span(name, trace.set_span_in_context(NonRecordingSpan(context)), kind, attributes) as span:
        yield span


@lru_cache(maxsize=256)
def _carried(parent: str) -> Context:
    """The context an unsampled hop makes current, made once per `traceparent` (the events of one
    poll share one)."""
    return trace.set_span_in_context(NonRecordingSpan(parse_traceparent(parent) or trace.INVALID_SPAN_CONTEXT))


@contextmanager
def child(
    name: str, attributes: Mapping[str, Any] | None = None, kind: SpanKind = SpanKind.INTERNAL
) -> Iterator[Span | None]:
    """A step inside the current span, recorded only when that span is."""
    if not trace.get_current_span().is_recording():
        yield None
        return
    with _span(name, None, kind, attributes) as span:
        yield span


def handling(step: str, event: WorkerEvent) -> AbstractContextManager[Span | None]:
    """A step of handling a consumed event (plan, apply), under the event's trace."""
    return continued(f"{step} {event.type.value}", event.traceparent, _about(event))


def _about(event: WorkerEvent) -> dict[str, str]:
    return {"provisioner.event_id": event.id, "provisioner.worker_id": event.subject}


def planned(span: Span | None, actions: Sequence[Action]) -> None:
    """What a plan decided ("create payroll"), on its span (told only when it is recorded)."""
    if span is not None:
        span.set_attribute("provisioner.actions", [f"{a.action.value} {a.target}" for a in actions])


def failed_at(span: Span | None, targets: list[str]) -> None:
    """Which apps an event failed at, not their answers: those may quote a person's data."""
    if span is not None and targets:
        span.set_status(StatusCode.ERROR, f"failed at {', '.join(targets)}")


def request_span(method: str, host: str, path: str, app: str) -> AbstractContextManager[Span | None]:
    """An HTTP client span (`http.request.resend_count` is set as retries go). Only the path is
    told: a query may hold a filter on a person's email; and a segment of it that is an email (a
    REST app's `/users/{{ worker.work_email }}`) is told as `{email}`."""
    shown = "/".join(_EMAIL if "@" in segment else segment for segment in path.split("/"))
    attributes = {"http.request.method": method, "server.address": host, "url.path": shown, "provisioner.app": app}
    return child(f"{method} {app}", attributes, SpanKind.CLIENT)


def answered(span: Span | None, status: int) -> None:
    if span is not None:
        span.set_attribute("http.response.status_code", status)
        if status >= 400:
            span.set_status(StatusCode.ERROR)


def stored_traceparent(payload: bytes) -> str | None:
    """The `traceparent` of an event as the outbox stored it, without decoding the JSON."""
    start = payload.find(_FIELD, 0, 512)  # it comes before the event's data
    if start < 0:
        return None
    start += len(_FIELD)
    value = payload[start : start + _LENGTH]
    return value.decode("ascii", "replace") if len(value) == _LENGTH else None


def publishing(payload: bytes, topic: str, partition: int) -> tuple[str | None, Span | None]:
    """The `traceparent` a record's headers carry, and the producer span to end once the broker
    acknowledged it (None: the change's trace is not sampled and the stored context goes as it is)."""
    stored = stored_traceparent(payload)
    context = parse_traceparent(stored)
    if context is None or not context.trace_flags.sampled:
        return stored, None
    span = _tracer().start_span(
        f"publish {topic}",
        context=trace.set_span_in_context(NonRecordingSpan(context)),
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "publish",
            "messaging.destination.name": topic,
            "messaging.destination.partition.id": str(partition),
        },
    )
    return traceparent(span.get_span_context()), span


def header(headers: Sequence[tuple[str, bytes]] | None) -> str | None:
    """The `traceparent` of a consumed record's headers."""
    for name, value in headers or ():
        if name == TRACEPARENT:
            return value.decode("ascii", "replace")
    return None


def received(event: WorkerEvent, headers: Sequence[tuple[str, bytes]] | None, topic: str) -> WorkerEvent:
    """A consumed event, its trace continued: the record's header (the producer span) is the parent,
    else the event's own attribute; a sampled trace gets a consumer span, which the plan and the
    app requests of this event then hang under."""
    parent = header(headers) or event.traceparent
    context = parse_traceparent(parent)
    if context is None or not context.trace_flags.sampled:
        return event  # nothing to record: the hops after this one continue from the event's own context
    attributes = {**_RECEIVE, **_about(event)}
    with continued(f"receive {topic}", parent, attributes, SpanKind.CONSUMER) as span:
        if span is None:
            return event
        return event.model_copy(update={"traceparent": traceparent(span.get_span_context())})


_RECEIVE = {"messaging.system": "kafka", "messaging.operation.type": "receive"}

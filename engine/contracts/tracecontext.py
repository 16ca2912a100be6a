"""W3C trace context as text: what an event and a log entry carry of the span they were made in.

The events' `traceparent` is the CloudEvents Distributed Tracing extension; it is read from the span
current when the event is made, so every producer of events (a poll, a webhook, a retry, a person's
"provision now") hands its trace on without passing it along by hand.
"""

from __future__ import annotations

from functools import lru_cache

from opentelemetry import trace
from opentelemetry.trace import SpanContext, TraceFlags


def traceparent(context: SpanContext) -> str:
    return _formatted(context.trace_id, context.span_id, context.trace_flags)


def current_traceparent() -> str | None:
    """The current span as a `traceparent` (None outside any span)."""
    context = trace.get_current_span().get_span_context()
    return traceparent(context) if context.is_valid else None


# Every event of a poll is made in the poll's one span: its traceparent is formatted once.
@lru_cache(maxsize=256)
def _formatted(trace_id: int, span_id: int, flags: int) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"


def current_trace_id() -> str | None:
    """The current trace's id, 32 hex digits (None outside any span)."""
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else None


def parse_traceparent(value: str | None) -> SpanContext | None:
    """A remote span context from a `traceparent` (version 00); None for anything else."""
    return _parsed(value) if value else None


# Every event of one poll carries the poll's context, and each is read at several hops (publish,
# receive, plan, apply): a million-person first sync parsed one string four million times.
@lru_cache(maxsize=256)
def _parsed(value: str) -> SpanContext | None:
    if not value or len(value) != 55 or value[2] != "-" or value[35] != "-" or value[52] != "-":
        return None
    try:
        trace_id, span_id, flags = int(value[3:35], 16), int(value[36:52], 16), int(value[53:], 16)
    except ValueError:
        return None
    context = SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(flags))
    return context if context.is_valid else None


def trace_id_of(value: str | None) -> str | None:
    """The trace id part of a `traceparent`."""
    context = parse_traceparent(value)
    return f"{context.trace_id:032x}" if context is not None else None

"""Traces in the tests: an OpenTelemetry provider collecting spans in memory, and a trace printed as a
tree (what the tests assert on, and what a person reads)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once

from provisioner.engine.kit import tracing


@dataclass(frozen=True)
class Span:
    """One finished span, from this process (the SDK) or another (decoded OTLP)."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    start: int  # ns
    end: int
    process: str
    attributes: dict[str, Any] = field(default_factory=dict)
    links: tuple[str, ...] = ()  # trace ids this span links to

    @classmethod
    def of(cls, span: ReadableSpan, process: str) -> Span:
        context = span.get_span_context()
        assert context is not None
        return cls(
            span.name,
            f"{context.trace_id:032x}",
            f"{context.span_id:016x}",
            f"{span.parent.span_id:016x}" if span.parent else None,
            span.start_time or 0,
            span.end_time or 0,
            process,
            dict(span.attributes or {}),
            tuple(f"{link.context.trace_id:032x}" for link in span.links),
        )


def reset_provider() -> None:
    """Forget the process's TracerProvider. OpenTelemetry lets a process set one once; its own test
    helpers reset the same two globals, so each test installs the provider it needs."""
    trace._TRACER_PROVIDER_SET_ONCE = Once()  # type: ignore[attr-defined]
    trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]


def collecting() -> InMemorySpanExporter:
    """Install a provider that keeps every span of this process in memory."""
    reset_provider()
    exporter = InMemorySpanExporter()
    assert tracing.install(processor=SimpleSpanProcessor(exporter))
    return exporter


def stop_collecting() -> None:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()
    reset_provider()


def finished(exporter: InMemorySpanExporter, process: str = "engine") -> list[Span]:
    return [Span.of(s, process) for s in exporter.get_finished_spans()]


def tree(spans: Iterable[Span], trace_id: str) -> str:
    """One trace as indented text: each span under its parent, in start order, with its process,
    duration and the attributes a person looks for."""
    mine = sorted((s for s in spans if s.trace_id == trace_id), key=lambda s: s.start)
    ids = {s.span_id for s in mine}
    lines = [f"trace {trace_id}"]

    def walk(parent: str | None, depth: int) -> Iterator[str]:
        # A span whose parent is not here (another trace's, or not exported) is shown as a root.
        for span in (s for s in mine if (s.parent_id if s.parent_id in ids else None) == parent):
            took = (span.end - span.start) / 1e6
            yield f"{'  ' * depth}{span.name}  [{span.process}, {took:.1f} ms]{_said(span)}"
            yield from walk(span.span_id, depth + 1)

    lines += walk(None, 1)
    return "\n".join(lines)


_SHOWN = (
    "url.path",
    "http.response.status_code",
    "http.request.resend_count",
    "provisioner.worker_id",
    "provisioner.actions",
)


def _said(span: Span) -> str:
    parts = [f"{key.rsplit('.', 1)[-1]}={span.attributes[key]}" for key in _SHOWN if key in span.attributes]
    if span.links:
        parts.append(f"links={','.join(t[:8] for t in span.links)}")
    return f"  {' '.join(parts)}" if parts else ""

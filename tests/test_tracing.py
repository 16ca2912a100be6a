"""Fast tier: traces through the whole flow in one process (in-memory bus, SQLite, scim2-server in
a thread): a hire is one trace from the poll to each app request, a retry starts a new trace linked
to the one that failed, log lines and provisioning log entries carry the trace id, and with tracing
off nothing is exported and nothing breaks."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from provisioner.engine.cli.logs import JsonFormatter, LineFormatter
from provisioner.engine.config import Config
from provisioner.engine.contracts.approvals import Approver
from provisioner.engine.contracts.events import WorkerEvent, change_event
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.tracecontext import trace_id_of
from provisioner.engine.kit import tracing
from provisioner.engine.kit.http import resilient_client
from provisioner.engine.runtime.agent_requests import request_provision_now
from provisioner.engine.runtime.approvals import decide
from provisioner.engine.runtime.http.console import templates
from provisioner.engine.runtime.views import worker_detail
from provisioner.engine.store import Store
from tests.flow import People, engine, hire, sync, until
from tests.tracetree import Span, collecting, finished, reset_provider, stop_collecting, tree

pytestmark = pytest.mark.fast

RETRY_SOON = {"attempts": 5, "initial": 0.05, "max": 0.1}
ONE_BY_ONE = {"bulk": False}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = collecting()
    yield exporter
    stop_collecting()


@pytest.fixture
def lines() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """The engine's log as JSON lines and as plain lines."""
    as_json, plain = io.StringIO(), io.StringIO()
    handlers = [logging.StreamHandler(as_json), logging.StreamHandler(plain)]
    handlers[0].setFormatter(JsonFormatter())
    handlers[1].setFormatter(LineFormatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("provisioner")
    level = root.level
    root.setLevel(logging.INFO)
    for handler in handlers:
        root.addHandler(handler)
    yield as_json, plain
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(level)


async def test_a_hire_is_one_trace_from_the_poll_to_each_app_request(tmp_path, scim_server, spans, lines):
    people = People(tmp_path / "people.json")
    people.write(hire(1))
    async with engine(tmp_path, scim_server.url, people) as runtime:
        assert await sync(runtime) == 1
        detail = worker_detail(runtime.parts, "hr:1")
    collected = finished(spans)
    [poll] = [s for s in collected if s.name == "poll hr"]
    mine = [s for s in collected if s.trace_id == poll.trace_id]
    print(tree(collected, poll.trace_id))
    by_name = {s.name: s for s in mine}
    assert by_name["outbox write"].parent_id == poll.span_id
    receive = by_name["receive worker-events"]  # the in-memory bus: no producer span, the stored context
    assert receive.parent_id == by_name["outbox write"].span_id
    assert by_name["plan worker.hired"].parent_id == receive.span_id
    apply = by_name["apply worker.hired"]
    assert apply.parent_id == receive.span_id
    requests = [s for s in mine if s.parent_id == apply.span_id]
    assert {s.name for s in requests} >= {"POST target app", "PATCH target app"}
    assert all(s.attributes["http.response.status_code"] < 300 for s in requests)
    # The provisioning log, the console's person page and the log lines name this trace.
    entries = runtime.store.log.recent("hr:1")
    assert entries and {e.trace_id for e in entries} == {poll.trace_id}
    assert detail["trace_id"] == poll.trace_id
    page = templates().get_template("worker.html").render(csrf="-", path="/workers/hr:1", notice=None, w=detail)
    assert f'<code class="trace">{poll.trace_id}</code>' in page  # the console's person page
    assert f'<code title="{poll.trace_id}">{poll.trace_id[:8]}</code>' in page  # its log table
    as_json, plain = lines
    told = [json.loads(line) for line in as_json.getvalue().splitlines()]
    assert any(line.get("trace_id") == poll.trace_id and "1 event" in line["message"] for line in told)
    assert f"[trace {poll.trace_id[:8]}]" in plain.getvalue()


async def test_a_retry_is_a_new_trace_linked_to_the_change_that_failed(tmp_path, counting_scim, spans):
    counting, server, _ = counting_scim
    people = People(tmp_path / "people.json")
    people.write(hire(1))
    counting.failing = "503 Service Unavailable"
    async with engine(tmp_path, server.url, people, retry=RETRY_SOON, target=ONE_BY_ONE) as runtime:
        await sync(runtime)
        [poll] = [s for s in finished(spans) if s.name == "poll hr"]
        failed = [s for s in finished(spans) if s.trace_id == poll.trace_id and _creates_user(s)]
        assert failed and failed[0].attributes["http.response.status_code"] == 503
        assert failed[0].attributes["http.request.resend_count"] == 1  # max_attempts 2: one resend
        counting.failing = None
        await until(runtime.retry_due, "the failed write to fall due again")
        await runtime.wait_idle(timeout=30)
    collected = finished(spans)
    [retry] = [s for s in collected if s.name == "retry"]
    assert retry.trace_id != poll.trace_id and retry.links == (poll.trace_id,)
    print(tree(collected, retry.trace_id))
    posts = [s for s in collected if s.trace_id == retry.trace_id and _creates_user(s)]
    assert [s.attributes["http.response.status_code"] for s in posts] == [201]
    logged = {e.action: e.trace_id for e in runtime.store.log.recent("hr:1")}
    assert logged["create"] == retry.trace_id


async def test_with_tracing_off_nothing_is_exported_and_ids_still_name_the_change(tmp_path, scim_server):
    reset_provider()
    try:
        people = People(tmp_path / "people.json")
        people.write(hire(1))
        async with engine(tmp_path, scim_server.url, people) as runtime:
            assert await sync(runtime) == 1
            provider = trace.get_tracer_provider()
            assert isinstance(provider, TracerProvider)
            assert provider._active_span_processor._span_processors == ()  # no exporter at all
            entries = runtime.store.log.recent("hr:1")
        [trace_id] = {e.trace_id for e in entries}
        assert trace_id is not None and len(trace_id) == 32
    finally:
        stop_collecting()


def test_the_trace_context_travels_with_the_event_and_leaves_its_id_alone(spans):
    person = Worker.model_validate({**hire(1), "id": "hr:1", "source": "hr"})
    plain = change_event("hr", None, None, person)
    with tracing.root("poll hr", {}):
        traced = change_event("hr", None, None, person)
    assert plain.traceparent is None and traced.traceparent is not None
    assert traced.id == plain.id
    stored = traced.model_dump_json().encode()
    assert tracing.stored_traceparent(stored) == traced.traceparent
    assert WorkerEvent.model_validate_json(stored).traceparent == traced.traceparent
    assert trace_id_of(traced.traceparent) == finished(spans)[0].trace_id


async def test_an_app_request_span_tells_no_email_of_its_path_or_query(scim_server, spans):
    async with resilient_client(scim_server.url, app="target app") as client:
        with tracing.root("poll hr", {}):
            await client.get("/Users/ada.home@example.net", params={"filter": 'userName eq "ada@example.com"'})
    [request] = [s for s in finished(spans) if s.name == "GET target app"]
    assert request.attributes["url.path"] == "/Users/{email}"
    assert request.attributes["http.response.status_code"] == 404
    assert "@" not in json.dumps([s.attributes for s in finished(spans)])


def _creates_user(span: Span) -> bool:
    return span.name == "POST target app" and span.attributes["url.path"].endswith("/Users")


async def test_a_deferred_action_fires_in_a_new_trace_linked_to_the_change_that_deferred_it(
    tmp_path, scim_server, spans
):
    leaves = datetime.now(UTC) + timedelta(days=3)
    people = People(tmp_path / "people.json")
    people.write(hire(1, termination_date=leaves.date().isoformat()))
    async with engine(tmp_path, scim_server.url, people) as runtime:
        await sync(runtime)
        [poll] = [s for s in finished(spans) if s.name == "poll hr"]
        [row] = runtime.store.schedule.deferred("hr:1")
        assert trace_id_of(row.traceparent) == poll.trace_id
        assert await runtime.fire_due(now=leaves + timedelta(days=1)) == 1
        await runtime.wait_idle(timeout=30)
    collected = finished(spans)
    [fired] = [s for s in collected if s.name == "deferred"]
    assert fired.trace_id != poll.trace_id and fired.links == (poll.trace_id,)
    print(tree(collected, fired.trace_id))
    # Re-planned under the new trace (by the engine's own clock the leaving date is still ahead).
    assert any(s.trace_id == fired.trace_id and s.name == "plan worker.updated" for s in collected)


def test_an_approval_decided_on_any_surface_starts_the_trace_of_what_it_sets_off(tmp_path, spans):
    # The console, the CLI and the API all decide through approvals.decide: its span is the root of
    # the re-plan it enqueues, so the person page names this trace for the grant that follows.
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    with store.unit() as s:
        store.snapshots.upsert(s, "hr", [Worker(id="hr:1", source="hr", remote_id="1", work_email="a@x.com")])
    config = Config.model_validate({"approvals": {"requests": {"by": "people:[mia]"}}})
    asked = request_provision_now(store, config, "hr:1", "agent-x")
    decide(store, asked.id, Approver(name="mia", person="hr:9"), approve=True)
    [root] = [s for s in finished(spans) if s.name == "approval approved"]
    [row] = store.outbox.unpublished(10)
    assert trace_id_of(json.loads(row.payload)["traceparent"]) == root.trace_id
    [decided] = [e for e in store.log.recent("hr:1") if e.action == "approval_approved"]
    assert decided.trace_id == root.trace_id
    store.close()

"""Read models of the operations surface: what the API, the console and the CLI show.

One function per question, each returning JSON-ready pydantic models or dicts, so that
`provisioner status --json`, `GET /api/v1/status` and the console's overview give the same answer.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from provisioner.engine.config import Config
from provisioner.engine.contracts.records import MCP_CALL, LogEntry
from provisioner.engine.runtime.policytools import explain
from provisioner.engine.runtime.view_models import (
    EngineView,
    FailureCounts,
    SourceView,
    Status,
    TargetView,
    WorkerSummary,
)
from provisioner.engine.runtime.wiring import Parts
from provisioner.engine.store import Store, as_utc

RECONCILE_REPORT = "reconcile"


def utc(moment: datetime | None) -> datetime | None:
    """Every time leaves the engine in UTC with its zone, whatever the database kept."""
    return as_utc(moment) if moment is not None else None


def sources(config: Config, store: Store) -> list[SourceView]:
    states = store.sources.states()
    held = store.quarantine.counts()
    rows = []
    for s in config.sources:
        state, cursor = states.get(s.name), store.snapshots.cursor(s.name)
        failing = state.failing if state else None
        polled = utc(state.last_poll_at) if state else None
        # A source without a read mode (a file) reads everything every time: each poll is a full read.
        whole = polled is not None and "mode" not in cursor
        rows.append(
            SourceView(
                source=s.name,
                type=s.type,
                halted=bool(state and state.halted),
                reason=state.reason if state else None,
                halted_at=utc(state.halted_at) if state else None,
                last_poll=polled,
                workers=state.workers if state else 0,
                last_read="full" if whole else cursor.get("mode"),
                last_full_read=polled.isoformat() if whole and polled else cursor.get("last_full_read"),
                poll_interval_s=s.poll_interval,
                up=failing is None,
                failing=failing,
                failing_since=utc(state.failing_since) if state else None,
                quarantined=held.get(s.name, 0),
            )
        )
    return rows


def status(config: Config, store: Store) -> Status:
    """What `provisioner status` shows."""
    rows = sources(config, store)
    deferred = store.schedule.deferred()
    per_target: dict[str, FailureCounts] = {}
    for f in sorted(store.failures.all(), key=lambda f: f.last_at):
        counts = per_target.setdefault(f.target, FailureCounts())
        setattr(counts, f.state, getattr(counts, f.state) + 1)
        counts.latest_error = f.last_error
    return Status(
        sources=rows,
        unapplied_events=store.outbox.pending_count(),
        scheduled=len(deferred),
        next_scheduled=utc(deferred[0].effective_at) if deferred else None,
        failures=per_target,
        retrying=sum(c.retrying for c in per_target.values()),
        dead=sum(c.dead for c in per_target.values()),
        quarantined=sum(r.quarantined for r in rows),
        halted=[r.source for r in rows if r.halted],
        engines=engines(config, store),
        access_not_removed=store.access.not_removed(),
        may_keep_access=store.access.unreadable_holders(),
        waiting_for_manager=len(store.references.waiting()),
    )


def engines(config: Config, store: Store) -> list[EngineView]:
    now = datetime.now(UTC)
    out: list[EngineView] = []
    for row in store.engines.alive():
        quiet = (now - as_utc(row.last_progress)).total_seconds() if row.last_progress else 0.0
        stalled = bool(row.lag + row.in_flight) and quiet >= config.engine.stall_seconds
        out.append(EngineView.model_validate({**row.model_dump(), "stalled": stalled}))
    return out


def failures(store: Store, worker: str | None = None, target: str | None = None) -> list[dict[str, Any]]:
    """Writes retrying or dead-lettered, as `provisioner failures --json` prints them: worker,
    target, action, state, attempts, next_retry, last_error, first_error, first_at, last_at, and
    access_not_removed: what a leaver or mover still holds there (null when the failure is no removal)."""
    remaining = {(a.worker_id, a.target): a.remains for a in store.access.not_removed()}
    return [
        {
            "worker": f.worker_id,
            "target": f.target,
            "action": f.action,
            "state": f.state,
            "attempts": f.attempts,
            "next_retry": utc(f.next_at),
            "last_error": f.last_error,
            "first_error": f.first_error,
            "first_at": utc(f.first_at),
            "last_at": utc(f.last_at),
            "access_not_removed": remaining.get((f.worker_id, f.target)),
        }
        for f in store.failures.all(target, worker)
    ]


def quarantine(config: Config, store: Store, source: str | None = None) -> list[dict[str, Any]]:
    """Records the latest poll of each configured source held back: {source, record, line, reason, at}.
    LookupError for a source the config does not name (every surface says so, none answers [])."""
    known = {s.name for s in config.sources}
    if source is not None and source not in known:
        raise LookupError(f"no source {source!r} in the config (known: {', '.join(sorted(known)) or 'none'})")
    return [
        {"source": r.source, "record": r.remote_id, "line": r.line, "reason": r.reason, "at": utc(r.at)}
        for r in store.quarantine.records(source)
        if r.source in known
    ]


def targets(config: Config, store: Store) -> list[TargetView]:
    accounts = store.search.accounts_by_target()
    last = store.search.last_results()
    failing: dict[str, int] = {}
    for f in failures(store):
        failing[f.get("target") or ""] = failing.get(f.get("target") or "", 0) + 1
    rows = []
    for t in config.targets:
        counts, recent = accounts.get(t.name, {}), last.get(t.name, {})
        rows.append(
            TargetView(
                target=t.name,
                type=t.type,
                base_url=t.base_url,
                accounts_active=counts.get("active", 0),
                accounts_disabled=counts.get("disabled", 0),
                last_result=recent.get("result"),
                last_action_at=utc(recent.get("time")),
                last_error=recent.get("error"),
                failures=failing.get(t.name, 0),
                healthy=recent.get("result") != "failure" and not failing.get(t.name),
                **learned(store, t.name),
            )
        )
    return rows


def learned(store: Store, target: str) -> dict[str, Any]:
    profile = store.profiles.get(target)
    if profile is None:
        return {}
    return {"learned": dict(profile.lessons()), "learned_at": utc(profile.updated_at)}


def workers(store: Store, q: str, limit: int = 50, fields: Collection[str] | None = None) -> list[WorkerSummary]:
    return [
        WorkerSummary(
            id=w.id,
            source=w.source,
            name=w.display_name or " ".join(p for p in (w.preferred_name or w.first_name, w.last_name) if p),
            work_email=w.work_email,
            status=w.status.value,
            department=w.department,
            title=w.title,
        )
        for w in store.search.workers(q, limit, fields=fields)
    ]


def log_entries(
    store: Store,
    worker: str | None = None,
    target: str | None = None,
    result: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[LogEntry]:
    entries = store.search.log(worker, target, result, since, min(max(limit, 1), 1000))
    return [e.model_copy(update={"time": utc(e.time)}) for e in entries]


def worker_detail(parts: Parts, worker_id: str) -> dict[str, Any]:
    """What `provisioner explain` shows, plus the worker's links, recent log and open failures.

    Raises LookupError for an unknown worker."""
    report = explain(parts, worker_id)
    for target in report["targets"].values():
        for entry in target["log"]:
            entry["time"] = utc(entry["time"])
        for deferred in target["scheduled"]:
            deferred["effective_at"] = utc(deferred["effective_at"])
    links = parts.store.links.for_workers([worker_id])
    report["id"] = worker_id
    report["links"] = [link.model_dump(mode="json") for link in links.values()]
    report["log"] = [e.model_dump(mode="json") for e in log_entries(parts.store, worker=worker_id, limit=20)]
    # The trace of their latest change: where an operator chasing it starts in the tracing backend.
    # An agent's tool call is logged with its own trace, but it changed nothing: skipped.
    report["trace_id"] = next(
        (e["trace_id"] for e in reversed(report["log"]) if e["trace_id"] and e["action"] != MCP_CALL), None
    )
    report["failures"] = failures(parts.store, worker=worker_id)
    return report


def reconcile_latest(store: Store) -> dict[str, Any] | None:
    """The last reconciliation's report (`provisioner reconcile --json`), with when it ran."""
    latest = store.reports.latest(RECONCILE_REPORT)
    if latest is None:
        return None
    at, body = latest
    return {"at": at.isoformat(), **body}


def record_reconcile(store: Store, report: dict[str, Any]) -> None:
    store.reports.save(RECONCILE_REPORT, report)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")

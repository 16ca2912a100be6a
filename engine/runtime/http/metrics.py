"""Prometheus metrics. Counters and histograms count what this process did; the gauges that
describe shared state (pending events, failures, halts, reconcile situations) are read from the
store at scrape time, so every replica reports the same numbers."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from provisioner.engine.config import Config
from provisioner.engine.contracts.records import LogEntry
from provisioner.engine.runtime import views
from provisioner.engine.runtime.batch import BatchReport
from provisioner.engine.runtime.fleet import Fleet
from provisioner.engine.store import Store

# Actions against SaaS APIs take from milliseconds to tens of seconds (rate limits, retries).
ACTION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
POLL_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# From an HR change seen to access confirmed gone: seconds when all goes well, days when a removal
# fails until a person acts.
REVOCATION_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400)


class Metrics:
    """One registry per engine process (no module-level state): the runtime records into it and
    `/metrics` renders it."""

    def __init__(self, config: Config, store: Store):
        self.registry = CollectorRegistry(auto_describe=True)
        self.actions = Counter(
            "provisioner_actions", "Actions applied to targets", ["target", "action", "result"], registry=self.registry
        )
        self.action_duration = Histogram(
            "provisioner_action_duration_seconds",
            "Time one action took against its target",
            ["target", "action"],
            buckets=ACTION_BUCKETS,
            registry=self.registry,
        )
        self.events = Counter(
            "provisioner_events", "Worker events a poll or webhook produced", ["source", "type"], registry=self.registry
        )
        self.poll_duration = Histogram(
            "provisioner_poll_duration_seconds",
            "Time one poll of a source took",
            ["source"],
            buckets=POLL_BUCKETS,
            registry=self.registry,
        )
        self.revocation = Histogram(
            "provisioner_revocation_seconds",
            "From an HR change seen to the access it removes confirmed gone (disable, delete, group removal)",
            ["target"],
            buckets=REVOCATION_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(StoreCollector(config, store))

    def watch(self, fleet: Fleet) -> None:
        """Render this engine's consumer, claims and relay state (counted in runtime/fleet.py)."""
        self.registry.register(FleetCollector(fleet))

    def record_actions(self, entries: Iterable[LogEntry]) -> None:
        for e in entries:
            if e.target is None:  # a plan that failed as a whole has no target to count it against
                continue
            self.actions.labels(e.target, e.action, e.result).inc()
            if e.result != "skipped":
                self.action_duration.labels(e.target, e.action).observe(e.duration_ms / 1000)

    def record_batch(self, report: BatchReport) -> None:
        """A recorded batch: its actions, and how long each access it removed took to go since the
        change was seen."""
        self.record_actions(report.entries)
        now = datetime.now(UTC)
        for target, seen in report.revoked:
            self.revocation.labels(target).observe(max((now - seen).total_seconds(), 0.0))

    def record_poll(self, source: str, seconds: float, event_types: Iterable[str]) -> None:
        self.poll_duration.labels(source).observe(seconds)
        for type_ in event_types:
            self.events.labels(source, type_).inc()


class FleetCollector(Collector):
    def __init__(self, fleet: Fleet):
        self.fleet = fleet

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        vitals, pipeline = self.fleet.vitals, self.fleet.pipeline
        lag = GaugeMetricFamily(
            "provisioner_consumer_lag", "Records of an assigned partition not yet done", labels=["partition"]
        )
        for partition, n in sorted(vitals.lag.items()):
            lag.add_metric([partition], n)
        yield lag
        yield _gauge("provisioner_assigned_partitions", "Partitions this engine consumes", len(vitals.lag))
        yield _gauge("provisioner_in_flight_events", "Events accepted or held, not yet recorded", pipeline.work)
        yield _gauge("provisioner_relay_leader", "1 while this engine holds the relay lease", int(vitals.leading))
        yield _gauge("provisioner_stalled", "1 while it has work and records nothing", int(bool(self.fleet.stalled())))
        listing = GaugeMetricFamily(
            "provisioner_target_listing_stalled",
            "1 while a target's listing outlasts a batch's wait (slow, huge or endless); others go on",
            labels=["target"],
        )
        for target in pipeline.applier.targets:
            listing.add_metric([target], int(target in pipeline.applier.primer.stalled))
        yield listing
        for name, text, value in (
            ("provisioner_rebalances", "Rebalances that took partitions from this engine", vitals.rebalances),
            ("provisioner_rebalance_paused_seconds", "Time spent handing lost partitions over", vitals.paused_seconds),
            ("provisioner_relay_republished", "Events a new relay leader published again", vitals.republished),
            ("provisioner_claims_taken_over", "Event claims taken from an engine that stopped", vitals.taken_over),
            ("provisioner_outcome_record_failures", "Failed tries to record outcomes", pipeline.health.failures),
            ("provisioner_outcomes_recorded_twice", "Outcomes recorded already elsewhere", pipeline.health.repeats),
        ):
            counter = CounterMetricFamily(name, text)
            counter.add_metric([], value)
            yield counter


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, text)
    gauge.add_metric([], value)
    return gauge


class StoreCollector(Collector):
    def __init__(self, config: Config, store: Store):
        self.config = config
        self.store = store

    def describe(self) -> Iterable[Metric]:
        return []  # read at scrape time only: registering must not query the store

    def _approvals(self) -> Iterator[Metric]:
        """Grants waiting for a person, per target: how many, and how long the oldest has waited."""
        waiting = GaugeMetricFamily(
            "provisioner_approvals_pending",
            "Grants waiting for approval (requests pending), per target",
            labels=["target"],
        )
        oldest = GaugeMetricFamily(
            "provisioner_approvals_pending_oldest_seconds",
            "Age of the oldest pending approval request, per target (0: none pending)",
            labels=["target"],
        )
        now = datetime.now(UTC)
        ages: dict[str, list[float]] = {t.name: [] for t in self.config.targets}
        for request in self.store.approvals.list("pending", limit=100_000):
            # a provision-now request is about every target: counted under "*" (ANY_TARGET)
            ages.setdefault(request.target or "*", []).append((now - request.requested_at).total_seconds())
        for target, seconds in sorted(ages.items()):
            waiting.add_metric([target], len(seconds))
            oldest.add_metric([target], max(seconds, default=0.0))
        yield waiting
        yield oldest

    def collect(self) -> Iterator[Metric]:
        pending = GaugeMetricFamily("provisioner_outbox_pending", "Events in the outbox not yet applied")
        pending.add_metric([], self.store.outbox.pending_count())
        yield pending

        leavers = GaugeMetricFamily(
            "provisioner_leavers_with_access",
            "People who left or moved out of scope and still hold access (a removal failed), per target",
            labels=["target"],
        )
        kept: dict[str, set[str]] = {t.name: set() for t in self.config.targets}
        for a in self.store.access.not_removed():
            kept.setdefault(a.target, set()).add(a.worker_id)
        for target, people in sorted(kept.items()):
            leavers.add_metric([target], len(people))
        yield leavers

        failures = GaugeMetricFamily(
            "provisioner_failures", "Failed actions by target and state (retrying|dead)", labels=["target", "state"]
        )
        counts: dict[tuple[str, str], int] = {(t.name, s): 0 for t in self.config.targets for s in ("retrying", "dead")}
        for f in views.failures(self.store):
            key = (str(f.get("target")), str(f.get("state")))
            counts[key] = counts.get(key, 0) + 1
        for (target, state), n in sorted(counts.items()):
            failures.add_metric([target, state], n)
        yield failures

        yield from self._approvals()

        quarantined = GaugeMetricFamily("provisioner_quarantined", "Records held back as bad input", labels=["source"])
        held = self.store.quarantine.counts()
        for source in sorted(s.name for s in self.config.sources):
            quarantined.add_metric([source], held.get(source, 0))
        yield quarantined

        up = GaugeMetricFamily("provisioner_source_up", "1 while the source's polls succeed", labels=["source"])
        halted = GaugeMetricFamily("provisioner_source_halted", "1 while the safety guard halts it", labels=["source"])
        last = GaugeMetricFamily(
            "provisioner_source_last_success_timestamp_seconds", "When its last poll succeeded", labels=["source"]
        )
        for s in views.sources(self.config, self.store):
            up.add_metric([s.source], 1 if s.up else 0)
            halted.add_metric([s.source], 1 if s.halted else 0)
            if s.last_poll is not None:
                last.add_metric([s.source], s.last_poll.timestamp())
        yield from (up, halted, last)

        situations = GaugeMetricFamily(
            "provisioner_reconcile_situations",
            "Accounts per situation in the last reconciliation",
            labels=["target", "situation"],
        )
        report = views.reconcile_latest(self.store)
        for target, by_situation in sorted((report or {}).get("summary", {}).items()):
            for situation, n in sorted(by_situation.items()):
                situations.add_metric([target, situation], n)
        yield situations

        duplicates = GaugeMetricFamily(
            "provisioner_duplicate_groups", "Names held by several groups (last reconcile)", labels=["target"]
        )
        found = Tally(str(d.get("target")) for d in (report or {}).get("duplicate_groups", []))
        for target in sorted(t.name for t in self.config.targets):
            duplicates.add_metric([target], found.get(target, 0))
        yield duplicates

"""Where a timed sync by several engines spends its time, for bench/cluster.py `--trace`: each
engine's /metrics sampled twice a second (partitions assigned, events in flight, actions done),
the app's requests in flight, the CPU of each process and the machine's dropped connections."""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

SAMPLE_S = 0.5


@dataclass
class Sample:
    at: float  # seconds since the timing started
    partitions: float = 0.0
    in_flight: float = 0.0
    actions: float = 0.0


@dataclass
class EngineTrace:
    ports: dict[str, int]
    samples: dict[str, list[Sample]] = field(default_factory=dict)

    def _scrape(self, client: httpx.Client, port: int, at: float) -> Sample:
        sample = Sample(at)
        try:
            text = client.get(f"http://127.0.0.1:{port}/metrics").text
        except httpx.HTTPError:
            return sample
        for family in text_string_to_metric_families(text):
            for metric in family.samples:
                if metric.name == "provisioner_assigned_partitions":
                    sample.partitions = metric.value
                elif metric.name == "provisioner_in_flight_events":
                    sample.in_flight = metric.value
                elif metric.name == "provisioner_actions_total":
                    sample.actions += metric.value
        return sample

    def run(self, stop: threading.Event) -> None:
        start = time.monotonic()
        with httpx.Client(timeout=2) as client:
            while not stop.wait(SAMPLE_S):
                for name, port in self.ports.items():
                    self.samples.setdefault(name, []).append(self._scrape(client, port, time.monotonic() - start))

    def lines(self) -> Iterator[str]:
        for name, samples in self.samples.items():
            working = [s for s in samples if s.in_flight > 0]
            moved = [b for a, b in itertools.pairwise(samples) if b.actions > a.actions]
            first = f"{moved[0].at:.1f}" if moved else "-"
            last = f"{moved[-1].at:.1f}" if moved else "-"
            flight = statistics.mean(s.in_flight for s in working) if working else 0
            counts = sorted({int(s.partitions) for s in samples})
            fetched = f"{working[0].at:.1f}" if working else "-"
            yield (
                f"{name}: partitions {counts}, events in hand from {fetched} s, "
                f"actions {samples[-1].actions:.0f} from {first} s to {last} s, "
                f"events in flight {flight:.0f} on average while working ({len(working)} samples)"
            )


@contextmanager
def engine_trace(ports: dict[str, int]) -> Iterator[EngineTrace]:
    trace, stop = EngineTrace(ports), threading.Event()
    thread = threading.Thread(target=trace.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield trace
    finally:
        stop.set()
        thread.join(timeout=10)

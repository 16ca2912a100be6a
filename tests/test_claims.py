"""Claims and idempotent outcomes in the store (SQLite and PostgreSQL): what lets several engines
share one store without applying a change twice or stalling on a key another engine wrote."""

from __future__ import annotations

import socket
from collections import Counter

import pytest
from sqlmodel import select

from provisioner.engine.contracts.events import change_event
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.records import EventOutcome, Link, LogEntry
from provisioner.engine.runtime.usecases.apply import record
from provisioner.engine.store import Store
from provisioner.engine.store.tables import EventClaim, OutboxEvent
from tests.conftest import in_flight

pytestmark = pytest.mark.fast

# Owners on another host are never "provably gone": only expiry frees their claims.
A, B = "elsewhere:1:1:a", "elsewhere:2:2:b"


def _outcome(event_id: str, worker_id: str = "hr:1") -> EventOutcome:
    outcome = EventOutcome(event_id)
    outcome.links.append(Link(worker_id=worker_id, target="app", account_id=f"acct-{event_id}"))
    outcome.log.append(
        LogEntry(event_id=event_id, worker_id=worker_id, target="app", action="create", result="success")
    )
    return outcome


def test_recording_an_outcome_twice_keeps_the_first_and_does_not_fail(store_url: str):
    store = Store(store_url)
    in_flight(store, "e1", "e2", "e3")
    assert record(store, [_outcome("e1"), _outcome("e2", "hr:2")]) == {"e1", "e2"}
    # Another engine records e1 again (after a rebalance) together with a new one: no IntegrityError,
    # e1's effects are not written twice, e3's are.
    assert record(store, [_outcome("e1"), _outcome("e3", "hr:3")]) == {"e3"}  # e1 a repeat
    with store.db.session() as s:
        assert s.exec(select(OutboxEvent.event_id)).all() == []  # each confirmed once, by its first recording
    assert store.outbox.applied(["e1", "e2", "e3", "e4"]) == {"e1", "e2", "e3", "e4"}  # e4 was never here
    log = Counter(e.event_id for e in store.log.recent(limit=100))
    assert log == {"e1": 1, "e2": 1, "e3": 1}
    assert {(link.worker_id, link.account_id) for link in store.links.all()} == {
        ("hr:1", "acct-e1"),
        ("hr:2", "acct-e2"),
        ("hr:3", "acct-e3"),
    }
    store.close()


def test_an_event_has_one_live_claim_taken_over_only_after_it_lapses(store_url: str):
    store = Store(store_url)
    in_flight(store, "e1", "e2", "e3")
    first = store.claims.take(["e1", "e2"], A, 60)
    assert first.mine == {"e1", "e2"} and first.taken_over == 0
    # B's batch overlaps A's: B gets only the free one, in the same single statement.
    second = store.claims.take(["e2", "e3"], B, 60)
    assert second.mine == {"e3"} and second.taken_over == 0
    assert store.claims.take(["e1"], A, 60).mine == {"e1"}  # renewing one's own claim
    # A stops renewing: once its claim lapses B takes it over, and says so.
    assert store.claims.take(["e2"], A, -1).mine == {"e2"}  # (expired now)
    taken = store.claims.take(["e2"], B, 60)
    assert taken.mine == {"e2"} and taken.taken_over == 1
    assert store.claims.live() == {"e1": A, "e2": B, "e3": B}
    # Recording an outcome deletes its claim; releasing drops the rest of an owner's.
    record(store, [_outcome("e1")])
    store.claims.release(["e2", "e3"], A)  # not A's: nothing happens
    assert set(store.claims.live()) == {"e2", "e3"}
    store.claims.release(["e2"], B)
    assert store.claims.live() == {"e3": B}
    assert store.claims.renew(B, 60) == 1
    store.close()


def test_the_claims_of_a_process_killed_on_this_host_are_taken_at_once(store_url: str):
    # Its claims have not lapsed, but its pid is gone: a restarted engine takes them in its first
    # batch (the upsert names the dead owners), and says it took them over.
    store = Store(store_url)
    in_flight(store, "e1", "e2", "e3", "e4")
    dead = f"{socket.gethostname()}:999999999:0:dead"
    assert store.claims.take(["e1", "e2"], dead, 60).mine == {"e1", "e2"}
    assert store.claims.take(["e3"], A, 60).mine == {"e3"}  # live elsewhere: kept
    taken = store.claims.take(["e1", "e2", "e3", "e4"], B, 60)
    assert taken.mine == {"e1", "e2", "e4"} and taken.taken_over == 2
    store.close()


def test_a_new_relay_leader_republishes_only_unclaimed_unconfirmed_events(store_url: str):
    store = Store(store_url)
    workers = [Worker(id=f"hr:{n}", source="hr", remote_id=str(n), first_name=f"P{n}") for n in range(3)]
    events = [change_event("hr", None, None, w) for w in workers]
    with store.unit() as s:
        store.snapshots.upsert(s, "hr", workers)
        store.outbox.enqueue(s, events)
    store.outbox.mark_published([r.seq for r in store.outbox.unpublished(10)])
    store.claims.take([events[1].id], A, 60)  # a live consumer is applying it
    store.claims.take([events[2].id], B, -1)  # its consumer died: the claim lapsed
    assert store.outbox.requeue_unconfirmed() == 2
    assert [r.event_id for r in store.outbox.unpublished(10)] == [events[0].id, events[2].id]  # oldest first
    with store.db.session() as s:
        assert len(s.exec(select(EventClaim)).all()) == 2
    # A process on this host killed with -9 (its embedded broker gone with it): its claims, not
    # yet lapsed, hold nothing back — its events exist nowhere else.
    store.outbox.mark_published([r.seq for r in store.outbox.unpublished(10)])
    store.claims.take([events[0].id], f"{socket.gethostname()}:999999999:0:dead", 60)
    assert store.outbox.requeue_unconfirmed() == 2  # events 0 and 2; event 1's owner is alive
    store.close()


def test_an_engine_that_stops_cleanly_hands_its_claims_back(store_url: str):
    """An engine stopped before it recorded what it claimed (a sync out of time): a later engine in
    the same live process must get those events again at once, not after the claims lapse."""
    from provisioner.engine.kit.process import new_owner

    store = Store(store_url)
    workers = [Worker(id=f"hr:{n}", source="hr", remote_id=str(n), first_name=f"P{n}") for n in range(2)]
    events = [change_event("hr", None, None, w) for w in workers]
    with store.unit() as s:
        store.outbox.enqueue(s, events)
    store.outbox.mark_published([r.seq for r in store.outbox.unpublished(10)])
    stopped, other = new_owner(), A
    store.claims.take([events[0].id], stopped, 60)
    store.claims.take([events[1].id], other, 60)
    assert store.outbox.requeue_unconfirmed() == 0  # both owners alive: both held
    assert store.claims.release_all(stopped) == 1
    assert store.outbox.requeue_unconfirmed() == 1
    assert [r.event_id for r in store.outbox.unpublished(10)] == [events[0].id]
    store.close()


def test_a_thing_of_a_name_is_created_by_one_engine_and_its_id_shared(store_url: str):
    store = Store(store_url)
    assert store.claims.target_claim("app", "group", "staff", A, 60) == (True, None)
    assert store.claims.target_claim("app", "group", "staff", B, 60) == (False, None)  # A is creating it
    store.claims.settle_target("app", "group", "staff", A, "g-1")
    assert store.claims.target_claim("app", "group", "staff", B, 60) == (False, "g-1")
    # A winner that failed gives the claim up; a winner that died is replaced once it lapses.
    assert store.claims.target_claim("app", "group", "ops", A, 60) == (True, None)
    store.claims.settle_target("app", "group", "ops", A, None)
    assert store.claims.target_claim("app", "group", "ops", B, -1) == (True, None)
    assert store.claims.target_claim("app", "group", "ops", A, 60) == (True, None)  # B's lapsed
    assert store.claims.target_claim("other", "group", "staff", B, 60) == (True, None)  # per target
    store.close()


def test_an_event_recorded_by_another_engine_is_never_claimed_again(store_url: str):
    """A checks the outbox, B records the event (deleting its claim), A claims: without this check
    A would hold a free claim on a change already applied and apply it a second time."""
    store = Store(store_url)
    in_flight(store, "e1", "e2")
    assert store.claims.take(["e1"], B, 60).mine == {"e1"}
    assert store.outbox.applied(["e1"]) == set()  # A's look before B finishes
    record(store, [_outcome("e1")])  # B records e1: its claim goes with it
    claimed = store.claims.take(["e1", "e2"], A, 60)
    assert claimed.mine == {"e2"}
    assert store.claims.live() == {"e2": A}  # no claim left behind on the recorded event
    store.close()


def test_the_events_another_engine_holds_are_those_of_its_live_claims(store_url: str):
    store = Store(store_url)
    in_flight(store, "e1", "e2", "e3")
    store.claims.take(["e1"], B, 60)
    store.claims.take(["e2"], A, 60)
    store.claims.take(["e3"], B, -1)  # lapsed: B no longer counts as applying it
    assert store.claims.elsewhere(["e1", "e2", "e3", "e4"], A) == {"e1"}
    assert store.claims.elsewhere(["e1", "e2", "e3"], B) == {"e2"}
    assert store.claims.elsewhere([], A) == set()
    store.close()


def test_a_direct_recording_takes_the_same_event_out_of_the_outbox(store_url: str):
    """Provision-now records without the outbox; a poll that made the same change first left it there
    under the same id. Recording takes it out, so no consumer applies it a second time."""
    store = Store(store_url)
    in_flight(store, "e1")
    assert record(store, [_outcome("e1")], direct=True) == {"e1"}
    assert store.outbox.applied(["e1"]) == {"e1"}
    assert record(store, [_outcome("e2", "hr:2")], direct=True) == {"e2"}  # never in the outbox: still recorded
    assert {link.account_id for link in store.links.all()} == {"acct-e1", "acct-e2"}
    store.close()

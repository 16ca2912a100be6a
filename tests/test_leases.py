"""Leases of a crashed process on this host are taken over at once; others wait for their TTL."""

from __future__ import annotations

import socket
import subprocess
import sys

from provisioner.engine.kit.process import new_owner, owner_is_gone, start_time
from provisioner.engine.store import Store


def dead_owner() -> str:
    """The owner string a process that has exited would have left behind."""
    child = subprocess.run(
        [sys.executable, "-c", "from provisioner.engine.kit.process import new_owner; print(new_owner())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return child.stdout.strip()


def test_owner_identity_names_host_pid_and_start_time():
    owner = new_owner()
    host, pid, started, _ = owner.rsplit(":", 3)
    assert host == socket.gethostname() and started == start_time(int(pid))
    assert not owner_is_gone(owner)  # this very process
    assert owner_is_gone(dead_owner())
    assert not owner_is_gone("elsewhere.example:1:123:abcdef")  # another host: only the TTL can tell
    assert not owner_is_gone("not an owner")
    host, pid, started, nonce = owner.rsplit(":", 3)
    assert owner_is_gone(f"{host}:{pid}:{int(started) + 1}:{nonce}")  # the pid, reused by someone else


def test_a_dead_local_holder_is_replaced_at_once_a_live_or_remote_one_is_not(store_url):
    store = Store(store_url)
    schedule = store.schedule
    gone, me, other = dead_owner(), new_owner(), new_owner()
    assert schedule.acquire_lease("relay", gone, 60, record=False)
    assert schedule.acquire_lease("relay", me, 60, record=False)  # not 60 s later: now
    assert not schedule.acquire_lease("relay", other, 60, record=False)  # `me` is alive
    schedule.release_lease("relay", me)
    assert schedule.acquire_lease("relay", "elsewhere.example:1:123:abcdef", 60, record=False)
    assert not schedule.acquire_lease("relay", me, 60, record=False)  # a remote holder keeps it for its TTL
    store.close()


def test_a_job_lease_is_not_taken_twice_in_one_period_even_by_its_holder(store_url):
    """A scheduled job fired twice in one period (a job store another engine just rewrote) runs once."""
    store = Store(store_url)
    schedule = store.schedule
    me = new_owner()
    assert schedule.acquire_lease("deferred:all", me, 60, renew=False)
    assert not schedule.acquire_lease("deferred:all", me, 60, renew=False)
    assert schedule.acquire_lease("deferred:all", me, 60)  # a leader's renewal is still a renewal
    assert len(schedule.job_runs("deferred:all")) == 2
    store.close()

"""Engines writing one group's members by read-modify-write (a PUT, or a `replace` of the whole
list) on an app without ETags: each confirms its own write, so a later one that read before the
other wrote undoes it unseen (a removed mover is back). A lease in the shared store orders them.
Real scim2-server behind a front with those habits, store on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest

from provisioner.engine.contracts.protocols import LeaseBusy
from provisioner.engine.kit.process import new_owner
from provisioner.engine.kit.servers import serve_asgi
from provisioner.engine.runtime.wiring import StoreNameClaims
from provisioner.engine.store import Store
from provisioner.targets.scim import ScimTarget
from tests.scim_front import Front
from tests.scim_habits import members_by_put, members_by_replace, without
from tests.test_group_claims import _groups, _target, _users

ROUNDS = 10  # each round: one engine removes the group's member, the other adds a new one


class _Counted(StoreNameClaims):
    """The runtime's leases, counting how often a writer asked for one."""

    holds = 0

    def hold(self, target: str, kind: str, name: str, seconds: float) -> AbstractAsyncContextManager[None]:
        self.holds += 1
        return super().hold(target, kind, name, seconds)


HABITS: dict[str, tuple[Callable[[str], Front], bool]] = {  # the app, and whether a write needs the lease
    "put": (members_by_put, True),
    "replace": (members_by_replace, True),
    "put-if-match": (lambda upstream: Front(upstream, rewrite_answer=without("patch")), False),
    "patch": (Front, False),
}


@pytest.mark.parametrize("habit", list(HABITS))
async def test_engines_changing_one_group_at_once_never_undo_each_other(
    store_url: str, scim_server, scim: httpx.Client, habit: str
) -> None:
    """Whole-list writes without ETags are leased; PATCH of single members, and a PUT with If-Match,
    are safe as they are and take no lease."""
    app, leased = HABITS[habit]
    store = Store(store_url)
    users = _users(scim)[: ROUNDS + 1]
    leases = [_Counted(store, new_owner()) for _ in range(2)]
    with serve_asgi(app(scim_server.url).app()) as front:
        engines: list[ScimTarget] = [_target(store_url, front.url) for _ in range(2)]
        for engine, lease in zip(engines, leases, strict=True):
            engine.share_names(lease)
        assert (await engines[0].set_groups(users[0], ["staff"], [])).ok
        wrong: list[tuple[int, set[str]]] = []
        for n in range(ROUNDS):
            leaving, joining = users[n], users[n + 1]
            remover, adder = engines[n % 2], engines[(n + 1) % 2]
            results = await asyncio.gather(
                remover.set_groups(leaving, [], ["staff"]), adder.set_groups(joining, ["staff"], [])
            )
            assert all(r.ok for r in results), [r.error for r in results]
            [staff] = _groups(scim, "staff")
            members = {m["value"] for m in staff.get("members") or []}
            if members != {joining}:
                wrong.append((n, members))
                scim.put(f"/Groups/{staff['id']}", json={**staff, "members": [{"value": joining}]})
        # Both writes of every round were confirmed; none may have been undone by the other.
        assert not wrong, f"{len(wrong)} of {ROUNDS} rounds lost a confirmed change: {wrong}"
        holds = sum(lease.holds for lease in leases)
        assert holds >= 2 * ROUNDS if leased else holds == 0
        for engine in engines:
            await engine.aclose()
    store.close()


async def test_a_group_write_lease_is_exclusive_bounded_and_lapses(store_url: str) -> None:
    store = Store(store_url)
    mine, other = StoreNameClaims(store, new_owner()), new_owner()
    assert store.claims.lease("app", "group-write", "g1", other, 30)  # a live engine holds it
    started = time.monotonic()
    with pytest.raises(LeaseBusy, match="stayed held by another write"):
        async with mine.hold("app", "group-write", "g1", 0.3):
            pytest.fail("entered a lease another engine holds")
    assert time.monotonic() - started < 5  # a bounded wait, not a hang
    async with mine.hold("app", "group-write", "g2", 5):  # another group is free
        assert not store.claims.lease("app", "group-write", "g2", other, 30)
    assert store.claims.lease("app", "group-write", "g2", other, 0.2)  # given back on leaving the block
    async with mine.hold("app", "group-write", "g2", 5):  # a holder that stops renewing lapses
        pass
    dead = f"{socket.gethostname()}:999999999:0:gone00"  # a crashed engine on this host
    assert store.claims.lease("app", "group-write", "g3", dead, 30)
    started = time.monotonic()
    async with mine.hold("app", "group-write", "g3", 30):
        assert time.monotonic() - started < 5  # taken over at once, not after 30 s
    store.close()

"""Fast tier: a person's life through the whole flow in one process (in-memory bus, SQLite store,
scim2-server in a thread): hired, moved to another department, terminated."""

from __future__ import annotations

import pytest

from tests.flow import ENTERPRISE, People, engine, groups_of, hire, sync, user

pytestmark = pytest.mark.fast


async def test_hire_move_and_termination_reach_the_app(tmp_path, scim_server, scim):
    people = People(tmp_path / "people.json")
    people.write(hire(1), hire(2, department="Sales"))
    async with engine(tmp_path, scim_server.url, people) as runtime:
        # hired: an active account with its attributes, in its department's group
        assert await sync(runtime) == 2
        ada = user(scim, "hr:1")
        assert (ada["userName"], ada["active"], ada["title"]) == ("p1@example.com", True, "Engineer")
        assert ada[ENTERPRISE]["department"] == "Engineering"
        assert groups_of(scim, ada["id"]) == {"staff", "dept-engineering"}
        assert groups_of(scim, user(scim, "hr:2")["id"]) == {"staff", "dept-sales"}

        # moved: the old department's group removed, the new one added, the same account
        people.write(hire(1, department="Research"), hire(2, department="Sales"))
        assert await sync(runtime) == 1
        moved = user(scim, "hr:1")
        assert moved["id"] == ada["id"] and moved[ENTERPRISE]["department"] == "Research"
        assert groups_of(scim, ada["id"]) == {"staff", "dept-research"}
        # removal first: access is revoked before any is granted
        moves = [e.action for e in runtime.store.log.recent("hr:1")[-3:]]
        assert moves[0] == "remove_groups" and sorted(moves) == ["add_groups", "remove_groups", "update"]

        # the same export again: nothing to do
        assert await sync(runtime) == 0

        # terminated: disabled, every managed group removed, nothing deleted
        people.write(
            hire(1, department="Research", status="terminated", termination_date="2026-01-31"),
            hire(2, department="Sales"),
        )
        assert await sync(runtime) == 1
        left = user(scim, "hr:1")
        assert left["active"] is False and groups_of(scim, left["id"]) == set()
        assert user(scim, "hr:2")["active"] is True
    assert runtime.totals.failed == 0

"""The situations, pinned on the pure classifier."""

from __future__ import annotations

import pytest

from provisioner.engine.contracts.models import Account
from provisioner.engine.contracts.records import Link
from provisioner.reconcile.classify import Desired, classify

pytestmark = pytest.mark.fast


def account(id_: str, user: str, active: bool = True, **attrs: str) -> Account:
    return Account(id=id_, active=active, attributes={"userName": user, **attrs})


def link(worker: str, account_id: str) -> Link:
    return Link(worker_id=worker, target="app", account_id=account_id)


def want(worker: str, user: str, in_scope: bool = True, **attrs: str) -> Desired:
    return Desired(worker, in_scope, attributes={"userName": user, **attrs}, keys=(user, worker))


def situations(items) -> set[tuple[str, str | None, str | None]]:  # type: ignore[no-untyped-def]
    return {(i.situation.value, i.worker_id, i.account_id) for i in items}


def test_each_situation():
    accounts = [
        account("a1", "ann"),  # linked, same: confirmed
        account("a2", "bob", title="Old"),  # linked, title differs: drifted
        account("a3", "cy"),  # matches cy, no link: unlinked
        account("a4", "dee"),  # dee left, still active: should_be_disabled
        account("a5", "nobody"),  # orphaned
        account("a6", "eve"),
        account("a7", "EVE.x", externalId="w:eve"),  # two for eve: ambiguous
        account("a8", "shared", externalId="w:fay"),  # fay's externalId and gus's userName: ambiguous
    ]
    desired = [
        want("w:ann", "ann"),
        want("w:bob", "bob", title="New"),
        want("w:cy", "cy"),
        want("w:dee", "dee", in_scope=False),
        want("w:eve", "eve"),
        want("w:fay", "fay"),
        want("w:gus", "shared"),
        want("w:hal", "hal"),
    ]
    links = {"w:ann": link("w:ann", "a1"), "w:bob": link("w:bob", "a2"), "w:dee": link("w:dee", "a4")}
    items = classify("app", desired, accounts, links)
    found = situations(items)
    assert ("confirmed", "w:ann", "a1") in found
    assert ("drifted", "w:bob", "a2") in found
    assert ("unlinked", "w:cy", "a3") in found
    assert ("should_be_disabled", "w:dee", "a4") in found
    assert ("orphaned", None, "a5") in found
    assert ("ambiguous", "w:eve", None) in found
    assert ("ambiguous", None, "a8") in found
    assert ("missing", "w:hal", None) in found
    drift = next(i for i in items if i.worker_id == "w:bob")
    assert drift.details == ["title: 'Old' → 'New'"]


def test_a_deleted_linked_account_is_missing_and_a_disabled_leaver_is_confirmed():
    items = classify(
        "app",
        [want("w:ann", "ann"), want("w:dee", "dee", in_scope=False)],
        [account("a4", "dee", active=False)],
        {"w:ann": link("w:ann", "gone"), "w:dee": link("w:dee", "a4")},
    )
    assert situations(items) == {("missing", "w:ann", "gone"), ("confirmed", "w:dee", "a4")}


def test_a_disabled_leaver_in_a_managed_group_is_drift_unless_the_target_keeps_groups():
    leaver = Desired("w:dee", False, keys=("dee",), departed=True)
    held = Account(id="a4", active=False, attributes={"userName": "dee"}, groups=["all-staff", "book-club"])
    links = {"w:dee": link("w:dee", "a4")}

    def managed(group: str) -> bool:
        return group == "all-staff"  # book-club is not the engine's: never judged

    [item] = classify("app", [leaver], [held], links, managed=managed)
    assert (item.situation.value, item.details) == (
        "drifted",
        ["worker left, account disabled, still in groups: all-staff"],
    )
    [kept] = classify("app", [leaver], [held], links, managed=managed, remove_groups=False)
    assert kept.situation.value == "deprovisioned"
    [not_listed] = classify("app", [leaver], [held], links, managed=managed, compare_groups=False)
    assert not_listed.situation.value == "deprovisioned"  # an app that lists no groups says nothing of them

"""The writers' core protocol and optional capabilities, detected by type (no network needed)."""

from __future__ import annotations

import pytest

from provisioner.engine.config import TargetConfig
from provisioner.engine.contracts.profile import Learner
from provisioner.engine.contracts.protocols import (
    ChecksItself,
    KnowsNotKept,
    ListsAccounts,
    ListsGroups,
    Primes,
    SharesNames,
    Target,
)
from provisioner.engine.runtime.priming import Primer
from provisioner.targets.rest import RestSettings, RestTarget
from provisioner.targets.scim import ScimTarget

pytestmark = pytest.mark.fast

CAPABILITIES = (ListsAccounts, Primes, ChecksItself, KnowsNotKept, ListsGroups, SharesNames, Learner)


def _scim() -> ScimTarget:
    return ScimTarget.from_config(TargetConfig(name="app", type="scim", base_url="http://127.0.0.1:9/scim/v2"))


def _rest() -> RestTarget:
    return RestTarget(TargetConfig(name="rest", type="rest", base_url="http://127.0.0.1:9/"), RestSettings())


async def test_the_scim_writer_has_every_capability_and_the_rest_writer_only_a_listing():
    scim, rest = _scim(), _rest()
    try:
        writers: list[Target] = [scim, rest]  # both satisfy the core protocol (checked by mypy)
        assert all(isinstance(scim, capability) for capability in CAPABILITIES)
        assert [c.__name__ for c in CAPABILITIES if isinstance(rest, c)] == ["ListsAccounts"]
        assert [w.name for w in writers] == ["app", "rest"]
    finally:
        await scim.aclose()
        await rest.aclose()


async def test_a_writer_without_the_primes_capability_is_not_asked_to_prime(caplog):
    rest = _rest()
    primer = Primer(budget=1.0)
    try:
        assert await primer.prime({"rest": rest}, {"rest": 1000}) == []
        assert primer.stalled == set()
        # asked anyway, it would fail (it has no prime) and the failure would be logged
        assert "could not list accounts" not in caplog.text
    finally:
        await primer.aclose()
        await rest.aclose()

from __future__ import annotations

import pytest

from provisioner.targets.mapping import Path, build_resource, flatten, patch_operations

pytestmark = pytest.mark.fast

ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def test_build_and_flatten_round_trip():
    attrs = {
        "userName": "a@x.com",
        "name.givenName": "Ada",
        'emails[type eq "work"].value': "a@x.com",
        f"{ENT}:department": "R&D",
        f"{ENT}:manager.value": "m1",
    }
    resource = build_resource(attrs, "urn:ietf:params:scim:schemas:core:2.0:User")
    assert resource["emails"] == [{"type": "work", "value": "a@x.com", "primary": True}]
    assert resource[ENT] == {"department": "R&D", "manager": {"value": "m1"}}
    assert ENT in resource["schemas"]
    assert flatten(resource, list(attrs)) == attrs


def test_patch_operations_add_for_missing_filtered_values():
    ops = patch_operations({'emails[type eq "work"].value': "b@x.com", "title": None, "displayName": "B"}, {})
    assert ops == [
        {"op": "add", "path": "emails", "value": [{"type": "work", "value": "b@x.com"}]},
        {"op": "remove", "path": "title"},
        {"op": "replace", "path": "displayName", "value": "B"},
    ]
    known = patch_operations({'emails[type eq "work"].value': "c@x.com"}, {'emails[type eq "work"].value': "b"})
    assert known[0]["op"] == "replace"


def test_bad_path_is_rejected():
    with pytest.raises(ValueError, match="not a SCIM attribute path"):
        Path.parse("emails[type = work]")

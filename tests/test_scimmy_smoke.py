"""Smoke tests of the SCIMMY server (tests/scimmy), a second SCIM 2.0 implementation written
by other people. They pin down what SCIMMY really answers, quirks included, because that is
what the provisioner has to cope with; a failure here after an upgrade means SCIMMY changed."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.scimmy_server import scimmy_available, scimmy_server_process

pytestmark = pytest.mark.skipif(not scimmy_available(), reason="needs node and `npm ci --prefix tests/scimmy`")

TOKEN = "smoke-token"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture
def base_url() -> Iterator[str]:
    with scimmy_server_process(TOKEN) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        yield client


def new_user(client: httpx.Client, user_name: str, **extra: object) -> dict:
    response = client.post("/Users", json={"schemas": [USER, ENTERPRISE], "userName": user_name, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def patch(client: httpx.Client, path: str, *operations: dict) -> httpx.Response:
    return client.patch(path, json={"schemas": [PATCH_OP], "Operations": list(operations)})


def find(client: httpx.Client, resource: str, scim_filter: str) -> list[dict]:
    response = client.get(resource, params={"filter": scim_filter})
    assert response.status_code == 200, response.text
    return response.json()["Resources"]


def test_missing_or_wrong_token_is_401(base_url: str):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        response = httpx.get(f"{base_url}/Users", headers=headers)
        assert response.status_code == 401
        assert response.json()["schemas"] == [ERROR] and response.json()["status"] == "401"


def test_create_assigns_id_and_meta(client: httpx.Client, base_url: str):
    user = new_user(
        client,
        "ada@example.com",
        externalId="hr:1",
        title="Engineer",
        name={"givenName": "Ada", "familyName": "Lovelace"},
        **{ENTERPRISE: {"department": "R&D"}},
    )
    assert user["id"]
    assert user["meta"]["resourceType"] == "User"
    assert user["meta"]["created"] and user["meta"]["lastModified"]
    assert user["meta"]["location"] == f"{base_url}/Users/{user['id']}"
    assert user[ENTERPRISE] == {"department": "R&D"}
    assert client.get(f"/Users/{user['id']}").json()["externalId"] == "hr:1"


def test_same_username_is_a_409_uniqueness_but_only_with_the_same_case(client: httpx.Client):
    new_user(client, "Ada@example.com")
    again = client.post("/Users", json={"schemas": [USER], "userName": "Ada@example.com"})
    assert again.status_code == 409
    assert again.json()["scimType"] == "uniqueness"
    # RFC 7643 makes userName case-insensitive, but SCIMMY compares exactly: another case is
    # another user here, so a client must not rely on a 409 to catch case-only duplicates.
    assert client.post("/Users", json={"schemas": [USER], "userName": "ada@example.com"}).status_code == 201


def test_username_filter_is_case_sensitive(client: httpx.Client):
    user = new_user(client, "Ada@example.com")
    assert [u["id"] for u in find(client, "/Users", 'userName eq "Ada@example.com"')] == [user["id"]]
    # Real SCIMMY behaviour (its Filter uses ===): a lookup by a differently cased userName
    # finds nothing, so a client that lower-cases before looking up will miss the account.
    assert find(client, "/Users", 'userName eq "ada@example.com"') == []
    # Attribute names, by contrast, are matched case-insensitively.
    assert [u["id"] for u in find(client, "/Users", 'USERNAME eq "Ada@example.com"')] == [user["id"]]


def test_filter_on_externalid_works_but_not_on_enterprise_attributes(client: httpx.Client):
    user = new_user(client, "ada@example.com", externalId="hr:1", **{ENTERPRISE: {"department": "R&D"}})
    assert [u["id"] for u in find(client, "/Users", 'externalId eq "hr:1"')] == [user["id"]]
    # SCIMMY's Filter looks the URN-qualified path up as one top-level key, so extension
    # attributes never match: filtering on them silently answers an empty list, not an error.
    assert find(client, "/Users", f'{ENTERPRISE}:department eq "R&D"') == []


def test_patch_replace_of_title_externalid_and_department(client: httpx.Client):
    user = new_user(
        client, "ada@example.com", title="Engineer", externalId="hr:1", **{ENTERPRISE: {"department": "R&D"}}
    )
    response = patch(
        client,
        f"/Users/{user['id']}",
        {"op": "replace", "path": "title", "value": "Staff Engineer"},
        {"op": "replace", "path": "externalId", "value": "hr:2"},
        {"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Research"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["title"] == "Staff Engineer" and body["externalId"] == "hr:2"
    assert body[ENTERPRISE]["department"] == "Research"
    assert client.get(f"/Users/{user['id']}").json()[ENTERPRISE]["department"] == "Research"

    # Without a path, the value's keys may be URN-qualified attributes too.
    response = patch(
        client,
        f"/Users/{user['id']}",
        {"op": "replace", "value": {"title": "Principal", f"{ENTERPRISE}:department": "Ops"}},
    )
    assert response.status_code == 200, response.text
    assert response.json()["title"] == "Principal" and response.json()[ENTERPRISE]["department"] == "Ops"

    # A PATCH that changes nothing answers 204 with no body (not 200 with the resource):
    # a client must not expect a representation back from every successful PATCH.
    unchanged = patch(client, f"/Users/{user['id']}", {"op": "replace", "path": "title", "value": "Principal"})
    assert unchanged.status_code == 204 and unchanged.content == b""


def test_patch_values_are_type_checked(client: httpx.Client):
    user = new_user(client, "ada@example.com", active=True)
    assert (
        patch(client, f"/Users/{user['id']}", {"op": "replace", "path": "active", "value": False}).json()["active"]
        is False
    )
    # Entra-style string booleans are refused rather than coerced.
    response = patch(client, f"/Users/{user['id']}", {"op": "replace", "path": "active", "value": "True"})
    assert response.status_code == 400 and response.json()["scimType"] == "invalidValue"


def test_group_members_add_and_remove_by_filter_path(client: httpx.Client):
    ada = new_user(client, "ada@example.com", displayName="Ada")
    bob = new_user(client, "bob@example.com")
    created = client.post("/Groups", json={"schemas": [GROUP], "displayName": "eng", "members": [{"value": ada["id"]}]})
    assert created.status_code == 201, created.text
    group = created.json()
    # display is filled in by the server (the glue, from the user) when the client omits it.
    assert group["members"] == [{"value": ada["id"], "display": "Ada", "type": "User"}]

    path = f"/Groups/{group['id']}"
    add_bob = {"op": "add", "path": "members", "value": [{"value": bob["id"]}]}
    added = patch(client, path, add_bob)
    assert added.status_code == 200, added.text
    assert sorted(m["value"] for m in added.json()["members"]) == sorted([ada["id"], bob["id"]])
    # Re-adding a member changes nothing, hence 204 (SCIMMY's PatchOp appends; the store dedupes).
    assert patch(client, path, add_bob).status_code == 204

    # Removal through a value filter in the path is supported by SCIMMY.
    remove_ada = {"op": "remove", "path": f'members[value eq "{ada["id"]}"]'}
    removed = patch(client, path, remove_ada)
    assert removed.status_code == 200, removed.text
    assert [m["value"] for m in removed.json()["members"]] == [bob["id"]]
    # Removing someone who is not a member is not an error (no noTarget for remove): 204.
    assert patch(client, path, remove_ada).status_code == 204
    # The Entra-style form (path "members" plus a value list) works too. With the last member
    # gone the group has no members attribute at all (the glue's store never keeps an empty list).
    emptied = patch(client, path, {"op": "remove", "path": "members", "value": [{"value": bob["id"]}]})
    assert emptied.status_code == 200 and "members" not in emptied.json()

    # Unknown member ids are refused (a choice of the glue's store, as most real services do).
    unknown = patch(client, path, {"op": "add", "path": "members", "value": [{"value": "nope"}]})
    assert unknown.status_code == 400 and unknown.json()["scimType"] == "invalidValue"


def test_delete_user_is_204_and_drops_memberships(client: httpx.Client):
    ada = new_user(client, "ada@example.com")
    group = client.post(
        "/Groups", json={"schemas": [GROUP], "displayName": "eng", "members": [{"value": ada["id"]}]}
    ).json()
    response = client.delete(f"/Users/{ada['id']}")
    assert response.status_code == 204
    assert client.get(f"/Users/{ada['id']}").status_code == 404
    assert client.delete(f"/Users/{ada['id']}").status_code == 404
    assert "members" not in client.get(f"/Groups/{group['id']}").json()


def test_paging_honours_start_index_and_count(client: httpx.Client):
    for n in range(3):
        new_user(client, f"user{n}@example.com")
    page = client.get("/Users", params={"startIndex": 2, "count": 1}).json()
    assert page["totalResults"] == 3 and page["startIndex"] == 2 and page["itemsPerPage"] == 1
    assert [u["userName"] for u in page["Resources"]] == ["user1@example.com"]
    # Without count SCIMMY pages by 20 and reports itemsPerPage 20 even when fewer are returned.
    everything = client.get("/Users").json()
    assert len(everything["Resources"]) == 3 and everything["itemsPerPage"] == 20


def test_service_provider_config(client: httpx.Client):
    config = client.get("/ServiceProviderConfig").json()
    assert config["patch"]["supported"] is True
    assert config["bulk"]["supported"] is False
    assert config["filter"] == {"supported": True, "maxResults": 200}
    assert config["etag"]["supported"] is False
    assert [s["type"] for s in config["authenticationSchemes"]] == ["oauthbearertoken"]
    # What it announces it enforces: the Bulk endpoint answers 501.
    assert client.post("/Bulk", json={}).status_code == 501

"""Source values read as HR systems write them: status and employment type in any case and through
the vendors' synonyms; a record that cannot be read for someone who holds access is never quiet."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from provisioner.engine.cli.main import app
from provisioner.engine.kit.servers import BackgroundServer
from provisioner.sources.values import employment_type, status

runner = CliRunner()


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("Terminated", "terminated"),
        ("TERMINATED", "terminated"),
        ("Inactive", "terminated"),
        ("Active", "active"),
        ("ACTIVE", "active"),
        ("Leave of absence", "on_leave"),
        ("On Leave", "on_leave"),
        ("on_leave", "on_leave"),
        ("Onboarding", "pending"),
        ("  pending ", "pending"),
    ],
)
def test_status_as_vendors_write_it(written: str, read: str):
    assert status(written) == read


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("Full-Time", "full_time"),
        ("FT", "full_time"),
        ("full_time", "full_time"),
        ("Part Time", "part_time"),
        ("PT", "part_time"),
        ("Contractor", "contractor"),
        ("Contingent Worker", "contractor"),
        ("Intern", "intern"),
        ("Seasonal", "temporary"),
        ("Board member", "other"),
    ],
)
def test_employment_type_as_vendors_write_it(written: str, read: str):
    assert employment_type(written) == read


def test_an_unknown_status_is_kept_as_written_for_the_quarantine_to_name():
    assert status("Retired") == "Retired" and status("") is None


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def row(i: int, status: str, kind: str = "Full-Time") -> dict[str, Any]:
    return {
        "remote_id": str(i),
        "first_name": f"P{i}",
        "last_name": "Lee",
        "work_email": f"p{i}@example.com",
        "employment_type": kind,
        "status": status,
    }


def cli(*args: str) -> Any:
    return runner.invoke(app, list(args))


def test_an_export_as_hr_wrote_it_deprovisions_and_an_unreadable_holder_is_never_quiet(
    store_url: str, scim_server: BackgroundServer, scim: httpx.Client, tmp_path: Path
):
    people = tmp_path / "people.csv"
    write_csv(people, [row(1, "Active"), row(2, "ACTIVE", "FT"), row(3, "Active", "Contractor")])
    config = tmp_path / "c.json"
    policy = {"name": "staff", "when": "worker.employment_type == 'full_time'", "grant": [{"target": "app"}]}
    config.write_text(
        json.dumps(
            {
                "store": {"url": store_url},
                "sources": [{"name": "hr", "type": "file", "path": str(people)}],
                "targets": [{"name": "app", "type": "scim", "base_url": scim_server.url, "max_attempts": 1}],
                "policies": [policy],
            }
        )
    )
    first = cli("sync", "-c", str(config))
    assert first.exit_code == 0, first.output
    users = {u["externalId"]: u for u in scim.get("/Users").json()["Resources"]}
    assert sorted(users) == ["hr:1", "hr:2"]  # "FT" is full time; a contractor is not in scope

    # The leaver as the HR system spelt it: disabled, not quarantined.
    write_csv(people, [row(1, "Terminated"), row(2, "ACTIVE", "FT"), row(3, "Active", "Contractor")])
    left = cli("sync", "-c", str(config))
    assert left.exit_code == 0, left.output
    assert "0 quarantined" in left.output
    assert scim.get(f"/Users/{users['hr:1']['id']}").json()["active"] is False

    # A status no vendor uses, for someone who holds an account: the sync and status say so.
    write_csv(people, [row(1, "Terminated"), row(2, "Retired"), row(3, "Active", "Contractor")])
    unread = cli("sync", "-c", str(config))
    assert unread.exit_code == 1, unread.output
    assert "may keep access" in unread.output and "hr:2" in unread.output
    summary = cli("status", "-c", str(config), "--json")
    assert summary.exit_code == 1
    [holder] = json.loads(summary.stdout)["may_keep_access"]
    assert (holder["worker_id"], holder["targets"]) == ("hr:2", ["app"]) and "Retired" in holder["reason"]
    assert "may keep access" in cli("status", "-c", str(config)).stdout
    assert scim.get(f"/Users/{users['hr:2']['id']}").json()["active"] is True

"""Bad input never stops the flow: record-level problems are quarantined (and listed), a source that
cannot be read fails its poll in one line and deprovisions nobody. Real CLI, real scim2-server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from provisioner.engine.cli.main import app
from provisioner.engine.kit.servers import serve_asgi
from provisioner.sources.workable.emulator import WorkableState
from provisioner.sources.workable.emulator import create_app as workable_app
from tests.conftest import make_config, person, scim_users

runner = CliRunner()


def config_for(tmp_path: Path, scim_url: str, store_url: str, path: Path, **source: str) -> Path:
    cfg = make_config(store_url, scim_url, {"name": "hr", "type": "file", "path": str(path), **source})
    config = tmp_path / "config.json"
    config.write_text(json.dumps(cfg.model_dump(mode="json", exclude_unset=True)))
    return config


def cli(*args: str) -> Any:
    return runner.invoke(app, [*args])


def quarantined(config: Path) -> list[dict[str, Any]]:
    result = cli("quarantine", "-c", str(config), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def active_users(scim: Any) -> dict[str, bool]:
    return {u["externalId"]: u["active"] for u in scim_users(scim)}


def flat(text: str) -> str:
    """Output as one line: the terminal wraps long paths."""
    return " ".join(text.split())


def assert_no_traceback(result: Any) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output


def test_duplicate_ids_in_json_are_quarantined_and_the_rest_flows(tmp_path, scim_server, scim, store_url):
    people = tmp_path / "people.json"
    people.write_text(json.dumps([person(i) for i in range(4)]))
    config = config_for(tmp_path, scim_server.url, store_url, people)
    assert cli("sync", "-c", str(config)).exit_code == 0
    assert active_users(scim) == {f"hr:{i}": True for i in range(4)}

    # Two records claim id 2 (one of them a stranger); person 4 is new.
    records = [person(i) for i in range(5)] + [person(2, first_name="Zed", work_email="zed@example.com")]
    people.write_text(json.dumps(records))
    result = cli("sync", "-c", str(config))
    assert_no_traceback(result)
    # Person 2 holds an account and their record cannot be read: never a quiet quarantine.
    assert result.exit_code == 1, result.output
    assert "may keep access hr:2" in flat(result.output)
    assert "zed@example.com" not in result.output and "Zed" not in result.output
    users = active_users(scim)
    assert users["hr:4"] is True  # the rest flows
    assert users["hr:2"] is True  # the quarantined worker keeps the previous snapshot: no deprovision
    held = quarantined(config)
    assert [(q["source"], q["record"]) for q in held] == [("hr", "2"), ("hr", "2")]
    assert all("appears 2 times" in q["reason"] for q in held)
    status = json.loads(cli("status", "-c", str(config), "--json").stdout)
    assert status["sources"][0]["quarantined"] == 2
    assert "quarantined" in cli("status", "-c", str(config)).stdout
    # Provisioning someone else now reads that one record: the source's quarantine stays as it is.
    assert cli("sync", "-c", str(config), "--worker", "hr:3").exit_code == 0
    assert len(quarantined(config)) == 2

    # Corrected at the source: the next poll empties the quarantine.
    people.write_text(json.dumps([person(i) for i in range(5)]))
    assert cli("sync", "-c", str(config)).exit_code == 0
    assert quarantined(config) == []


def test_duplicate_ids_and_an_undecodable_csv_row_on_a_first_sync(tmp_path, scim_server, scim):
    header = "remote_id,first_name,last_name,work_email,employment_type,status\n"
    rows = [
        "1,Ann,Lee,ann@example.com,full_time,active\n",
        "2,Bob,Lee,bob@example.com,full_time,active\n",
        "2,Bea,Lee,bea@example.com,full_time,active\n",
        "3,Cy,Lee,cy@example.com,full_time,active\n",
    ]
    people = tmp_path / "people.csv"
    # A byte-order mark (Excel) and one row written in Latin-1 by some other tool.
    people.write_bytes(
        b"\xef\xbb\xbf"
        + (header + "".join(rows)).encode()
        + "4,Jos\xe9,M\xfcller,jm@example.com,full_time,active\n".encode("latin-1")
    )
    config = config_for(tmp_path, scim_server.url, f"sqlite:///{tmp_path / 's.db'}", people)
    result = cli("sync", "-c", str(config))
    assert_no_traceback(result)
    assert result.exit_code == 0, result.output
    assert active_users(scim) == {"hr:1": True, "hr:3": True}
    held = quarantined(config)
    assert sorted((q["record"], q["line"]) for q in held) == [("2", None), ("2", None), ("4", 6)]
    latin = next(q for q in held if q["record"] == "4")
    assert "line 6" in latin["reason"] and "utf-8" in latin["reason"]
    table = cli("quarantine", "-c", str(config), "--source", "hr")
    assert table.exit_code == 0 and "appears 2 times" in table.stdout
    assert cli("quarantine", "-c", str(config), "--source", "nope").exit_code == 2

    # The file's real encoding, declared: that row is read as what it is.
    data = json.loads(config.read_text())
    data["sources"][0]["encoding"] = "cp1252"
    config.write_text(json.dumps(data))
    people.write_bytes(
        (header + rows[0] + rows[3]).encode() + "4,Jos\xe9,M\xfcller,jm@example.com,full_time,active\n".encode("cp1252")
    )
    assert cli("sync", "-c", str(config)).exit_code == 0
    assert next(u for u in scim_users(scim) if u["externalId"] == "hr:4")["name"]["familyName"] == "Müller"
    assert quarantined(config) == []


def test_a_shared_work_email_quarantines_only_the_newcomer(tmp_path, scim_server, scim):
    people = tmp_path / "people.json"
    people.write_text(json.dumps([person(1), person(2)]))
    config = config_for(tmp_path, scim_server.url, f"sqlite:///{tmp_path / 's.db'}", people)
    assert cli("sync", "-c", str(config)).exit_code == 0

    people.write_text(json.dumps([person(1), person(2), person(3, work_email="P1@example.com")]))
    result = cli("sync", "-c", str(config))
    assert result.exit_code == 0, result.output
    assert active_users(scim) == {"hr:1": True, "hr:2": True}
    held = quarantined(config)
    assert [(q["record"], q["reason"]) for q in held] == [("3", "work_email is already held by hr:1")]

    # Two newcomers with one address: neither holds it, both wait.
    people.write_text(
        json.dumps([person(1), person(2), person(4, work_email="x@example.com"), person(5, work_email="x@example.com")])
    )
    assert cli("sync", "-c", str(config)).exit_code == 0
    assert sorted(q["record"] for q in quarantined(config)) == ["4", "5"]
    assert "x@example.com" not in json.dumps(quarantined(config))


def test_an_unreadable_file_after_a_good_sync_fails_the_poll_and_deprovisions_nobody(tmp_path, scim_server, scim):
    people = tmp_path / "people.json"
    people.write_text(json.dumps([person(i) for i in range(3)]))
    config = config_for(tmp_path, scim_server.url, f"sqlite:///{tmp_path / 's.db'}", people)
    assert cli("sync", "-c", str(config)).exit_code == 0

    broken = {b"": "is empty", b'[{"remote_id": "1",': "not valid JSON", b"\xff\xfe[]": "not valid utf-8"}
    for content, why in broken.items():
        people.write_bytes(content)
        result = cli("sync", "-c", str(config))
        assert_no_traceback(result)
        assert result.exit_code == 1
        said = flat(result.output)
        assert "source hr:" in said and why in said and "nothing was changed" in said
        assert active_users(scim) == {f"hr:{i}": True for i in range(3)}  # nothing deprovisioned
        assert "failing" in cli("status", "-c", str(config)).stdout
        state = json.loads(cli("status", "-c", str(config), "--json").stdout)["sources"][0]
        assert why in state["failing"] and state["workers"] == 3

    people.write_text(json.dumps([person(i) for i in range(3)]))
    assert cli("sync", "-c", str(config)).exit_code == 0
    assert json.loads(cli("status", "-c", str(config), "--json").stdout)["sources"][0]["failing"] is None


def test_a_missing_file_fails_with_one_line(tmp_path, scim_server, store_url):
    config = config_for(tmp_path, scim_server.url, store_url, tmp_path / "nope.json")
    result = cli("sync", "-c", str(config))
    assert_no_traceback(result)
    assert result.exit_code == 1
    assert "does not exist" in flat(result.output)
    assert "does not exist" in json.loads(cli("status", "-c", str(config), "--json").stdout)["sources"][0]["failing"]


def test_a_refused_credential_fails_that_source_and_the_other_flows(tmp_path, scim_server, scim):
    people = tmp_path / "people.json"
    people.write_text(json.dumps([person(1)]))
    state = WorkableState()
    state.seed(2)
    with serve_asgi(workable_app(state)) as wk:
        cfg = make_config(
            f"sqlite:///{tmp_path / 's.db'}", scim_server.url, {"name": "hr", "type": "file", "path": str(people)}
        )
        data = cfg.model_dump(mode="json", exclude_unset=True)
        data["sources"].append({"name": "ats", "type": "workable", "base_url": f"{wk.url}/spi/v3", "token": "wrong"})
        config = tmp_path / "config.json"
        config.write_text(json.dumps(data))
        result = cli("sync", "-c", str(config))
    assert_no_traceback(result)
    assert result.exit_code == 1
    assert "refused the credentials" in flat(result.output) and "wrong" not in result.output
    assert active_users(scim) == {"hr:1": True}  # the readable source still flowed
    states = {s["source"]: s for s in json.loads(cli("status", "-c", str(config), "--json").stdout)["sources"]}
    assert states["hr"]["failing"] is None
    assert "refused the credentials" in states["ats"]["failing"]

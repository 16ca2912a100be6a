"""`provisioner sources dump|check` against emulators over real HTTP."""

from __future__ import annotations

import json
import socket

import pytest
import yaml
from typer.testing import CliRunner

from provisioner.engine.cli.main import app
from provisioner.engine.kit.servers import serve_asgi
from provisioner.sources.workable.emulator import WorkableState
from provisioner.sources.workable.emulator import create_app as workable_app
from provisioner.sources.workday.emulator import WorkdayState
from provisioner.sources.workday.emulator import create_app as workday_app

pytestmark = pytest.mark.fast


def test_dump_prints_workers_and_check_flags_bad_credentials(tmp_path):
    workday, workable = WorkdayState(), WorkableState()
    ids = workday.seed(4)
    workable.seed(2)
    with serve_asgi(workday_app(workday)) as wd, serve_asgi(workable_app(workable)) as wk:
        config = tmp_path / "provisioner.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "store": {"url": f"sqlite:///{tmp_path}/p.db"},
                    "sources": [
                        {
                            "name": "hr",
                            "type": "workday",
                            "base_url": f"{wd.url}/ccx/service/acme/Human_Resources",
                            "username": workday.username,
                            "password": "${WD_PASSWORD}",
                            "page_size": 3,
                        },
                        {"name": "ats", "type": "workable", "base_url": f"{wk.url}/spi/v3", "token": "wrong"},
                    ],
                    "targets": [{"name": "app", "type": "scim", "base_url": "http://127.0.0.1:9/scim"}],
                    "policies": [],
                }
            )
        )
        runner = CliRunner()
        env = {"WD_PASSWORD": workday.password}
        dumped = runner.invoke(app, ["sources", "dump", "hr", "-c", str(config)], env=env)
        assert dumped.exit_code == 0, dumped.output
        lines = [json.loads(line) for line in dumped.stdout.splitlines() if line.startswith("{")]
        assert sorted(w["remote_id"] for w in lines) == sorted(ids)
        assert not (tmp_path / "p.db").exists()  # dump changes no state
        checked = runner.invoke(app, ["sources", "check", "-c", str(config)], env=env)
        assert checked.exit_code == 1
        rows = {line.split("│")[1].strip(): line for line in checked.stdout.splitlines() if line.count("│") > 3}
        assert "ok" in rows["hr"] and "FAIL" in rows["ats"] and "refused" in rows["ats"]
        assert workday.password not in checked.stdout


def test_sandbox_serves_every_vendor_and_its_printed_config_checks_out(tmp_path):
    from provisioner.engine.sandbox.vendors import sandbox_app, sandbox_config

    emulators, states = sandbox_app(people=3)
    states["workable"].gate.window = 1.0  # keep the documented count, in a shorter window
    with serve_asgi(emulators) as server:
        config = tmp_path / "sandbox.yaml"
        config.write_text(
            sandbox_config(server.url, states)
            + yaml.safe_dump(
                {"targets": [{"name": "app", "type": "scim", "base_url": "http://127.0.0.1:9/scim"}], "policies": []}
            )
        )
        checked = CliRunner().invoke(app, ["sources", "check", "-c", str(config)])
        assert checked.exit_code == 0, checked.stdout
        assert checked.stdout.count(" ok ") == len(states)  # one line per emulated vendor
        for vendor in states:
            dumped = CliRunner().invoke(app, ["sources", "dump", vendor, "-c", str(config)])
            assert dumped.exit_code == 0 and len([ln for ln in dumped.stdout.splitlines() if ln.startswith("{")]) == 3


def test_the_hris_and_ats_example_checks_out_against_the_sandbox():
    from provisioner.engine.sandbox.vendors import sandbox_app

    emulators, _ = sandbox_app(people=2)
    with serve_asgi(emulators) as server:
        env = {
            "WORKDAY_PASSWORD": "sandbox-workday-password",
            "LEVER_API_KEY": "lever-source-key",
            "LEVER_WEBHOOK_TOKEN": "whsec-test",
            "WORKDAY_URL": f"{server.url}/workday/ccx/service/acme/Human_Resources/v40.0",
            "LEVER_URL": f"{server.url}/lever/v1",
        }
        checked = CliRunner().invoke(app, ["sources", "check", "-c", "examples/hris-and-ats.yaml"], env=env)
    assert checked.exit_code == 0, checked.stdout
    assert checked.stdout.count(" ok ") == 2


def test_the_sandbox_on_a_port_in_use_says_so_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        said = CliRunner().invoke(app, ["sandbox", "--port", str(port)])
    assert said.exit_code == 2
    assert f"cannot serve the sandbox on 127.0.0.1:{port}" in said.output
    assert "Traceback" not in said.output and "sources:" not in said.output  # no config for a sandbox that is not there

"""The sandbox is built from the vendor folders: it names no vendor, and each emulated vendor's
folder says how it is served and printed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from provisioner.engine.sandbox import vendors
from provisioner.engine.sandbox.vendors import sandbox_app, sandbox_config
from provisioner.sources import emulated_types

pytestmark = pytest.mark.fast


def test_the_sandbox_names_no_vendor_and_prints_one_entry_per_emulator():
    code = Path(vendors.__file__).read_text().lower()
    assert [kind for kind in emulated_types() if kind in code] == []
    _, states = sandbox_app(people=1)
    entries = yaml.safe_load(sandbox_config("http://127.0.0.1:8099", states))["sources"]
    assert sorted(e["name"] for e in entries) == sorted(emulated_types()) == sorted(states)
    for entry in entries:
        assert entry["type"] == entry["name"]
        assert entry["base_url"].startswith(f"http://127.0.0.1:8099/{entry['name']}")
    # the fixed credentials examples/hris-and-ats.yaml is documented with
    by_name = {e["name"]: e for e in entries}
    assert by_name["workday"]["password"] == states["workday"].password == "sandbox-workday-password"
    assert by_name["bamboohr"]["api_key"] == "sandbox-bamboohr-key"


def test_the_sandbox_help_names_every_vendor_it_serves():
    from typer.testing import CliRunner

    from provisioner.engine.cli.main import app

    shown = CliRunner().invoke(app, ["sandbox", "--help"], terminal_width=200).output.lower()
    assert [kind for kind in emulated_types() if kind not in shown] == []

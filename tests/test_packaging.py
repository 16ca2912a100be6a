"""The install is one namespace: `provisioner.*`, never a bare `rules` or `engine`."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"engine", "sources", "rules", "targets", "reconcile"}


def test_every_package_folder_is_installed_under_the_namespace():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    on_disk = {
        "provisioner." + ".".join(init.parent.relative_to(ROOT).parts)
        for folder in FOLDERS
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert on_disk == listed
    assert all(name.startswith("provisioner.") for name in listed)


def test_nothing_is_importable_under_a_bare_name_outside_the_repository(tmp_path):
    def imports(module: str) -> bool:
        run = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=tmp_path, capture_output=True)
        return run.returncode == 0

    assert imports("provisioner.rules.policy")
    assert imports("provisioner.engine.cli")
    for bare in FOLDERS:
        assert not imports(bare), f"`import {bare}` works outside the repository"


def test_version_and_module_entry_point(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "provisioner.engine.cli", "--version"], cwd=tmp_path, capture_output=True, text=True
    )
    assert run.returncode == 0
    assert run.stdout.startswith("provisioner ")

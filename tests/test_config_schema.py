"""`provisioner schema` is what an editor checks the YAML against: the project's own configs, short
forms and all (`poll_interval: 5m`, `on_terminate: disable`), must pass it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from provisioner.engine.runtime.policytools import config_schema

pytestmark = pytest.mark.fast
ROOT = Path(__file__).resolve().parents[1]
CONFIGS = [
    *sorted((ROOT / "examples").glob("*.yaml")),
    ROOT / "compose" / "provisioner.yaml",
]


class AsEditorsRead(yaml.SafeLoader):
    """YAML as a language server reads it: a timestamp stays a string."""


AsEditorsRead.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_the_projects_configs_pass_the_schema_an_editor_is_given(path: Path):
    data: Any = yaml.load(path.read_text(), Loader=AsEditorsRead)
    problems = [
        f"{list(e.path)}: {e.message}" for e in jsonschema.Draft202012Validator(config_schema()).iter_errors(data)
    ]
    assert problems == []


def test_the_schema_still_refuses_what_the_engine_refuses():
    validator = jsonschema.Draft202012Validator(config_schema())
    bad = {"sources": [], "targets": [{"name": "app", "type": "scim", "on_terminate": "archive"}]}
    assert list(validator.iter_errors(bad))

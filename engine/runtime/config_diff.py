"""`provisioner diff` without a terminal: two configs compared for a population, the new config's
own tests run, and a proposed config read from YAML text (what the MCP `diff_config` tool is given).
The CLI adds its gates and renderings on top; the comparison itself is `policy_diff.compare`."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from provisioner.engine.config import Config, ConfigError, load_config
from provisioner.engine.kit.words import plural
from provisioner.engine.runtime.diff_report import DiffReport
from provisioner.engine.runtime.policy_diff import compare
from provisioner.engine.runtime.policytools import run_policy_tests
from provisioner.engine.runtime.population import Population
from provisioner.engine.runtime.wiring import compile_planner
from provisioner.targets import settings_problems as target_problems

PROPOSED = "the proposed config"


def diff_configs(
    before: Config, after: Config, people: Population, targets: list[str] | None = None, *, tests: bool = True
) -> tuple[DiffReport, list[str]]:
    """The report and what it trips without any gate: people the new config cannot be evaluated for,
    and each failing test of its `tests:` block. ValueError: a policy of either config does not compile."""
    base_planner, new_planner = compile_planner(before), compile_planner(after)
    report = compare(
        base_planner, new_planner, people, datetime.now(UTC), targets, targets_alike=after.targets == before.targets
    )
    tripped = []
    if report.errors:
        tripped.append(f"the new config cannot be evaluated for {plural(len(report.errors), 'person', 'people')}")
    if tests:
        tripped += [f"test {o.name}: {f}" for o in run_policy_tests(after, new_planner) for f in o.failures]
    return report, tripped


def diff_json(report: DiffReport, tripped: list[str]) -> dict[str, Any]:
    """What `provisioner diff --json` prints."""
    return {**report.as_json(), "gates_tripped": tripped}


def load_proposed(text: str) -> Config:
    """A config from YAML text someone else wrote (an agent): its policies, mappings and tests are
    what a diff needs. Its `${VAR}` references stay as written: expanded, they would hand this
    process's secrets to the proposer (a mapping of `${PROVISIONER_API_TOKEN}` shows in the diff).
    Its sources' settings are not checked: a check may open a file they name (a client key), which
    would tell the proposer what this machine holds. ValueError with every problem, one per line."""
    with tempfile.TemporaryDirectory(prefix="provisioner-proposed-") as tmp:
        file = Path(tmp) / "proposed.yaml"
        file.write_text(text)
        try:
            return load_config(file, target_check=target_problems, secrets=False, environ={})
        except ConfigError as exc:
            raise ValueError("\n".join(str(p).replace(str(file), PROPOSED) for p in exc.problems)) from None

"""The pieces of `provisioner diff` that need no store: comparing plans by kind (a kind added later
gets its own section), attribute mappings, the PR-comment size, pseudonymous population files."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console

from provisioner.engine.cli.diffing import Gate, config_at
from provisioner.engine.cli.diffview import COMMENT_LIMIT, markdown, print_report
from provisioner.engine.config import Config
from provisioner.engine.contracts.models import Action, ActionKind, Worker
from provisioner.engine.contracts.records import Link
from provisioner.engine.runtime.diff_report import Change, DiffReport
from provisioner.engine.runtime.policy_diff import _target_changes, compare
from provisioner.engine.runtime.population import Population, export, referenced_fields
from provisioner.engine.runtime.wiring import compile_planner

pytestmark = pytest.mark.fast

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def config(mapping: dict[str, str], group: str = "eng") -> Config:
    return Config.model_validate(
        {
            "targets": [{"name": "app", "type": "scim", "base_url": "http://127.0.0.1:9", "mapping": mapping}],
            "policies": [
                {
                    "name": "eng",
                    "when": "worker.department == 'Engineering'",
                    "grant": [{"target": "app", "groups": [group]}],
                }
            ],
        }
    )


def worker(i: int, **kw: Any) -> Worker:
    fields = {"first_name": f"P{i}", "last_name": "Lee", "department": "Engineering", "title": "Dev", **kw}
    return Worker(id=f"hr:{i}", source="hr", remote_id=str(i), **fields)


def settled(people: list[Worker]) -> Population:
    """Links as a sync under `config(MAPPING)` leaves them: engineers in the app, in group eng."""
    links = {
        w.id: {
            "app": Link(
                worker_id=w.id,
                target="app",
                account_id=f"a{w.remote_id}",
                groups=["eng"],
                attributes={"userName": w.remote_id, "title": w.title},
            )
        }
        for w in people
        if w.department == "Engineering"
    }
    return Population(people, links)


MAPPING = {"userName": "{{ worker.remote_id }}", "title": "{{ worker.title }}"}


def test_a_mapping_change_names_the_attribute_the_templates_and_the_people():
    people = [worker(1), worker(2, title="Lead"), worker(3, department="Sales")]
    base, new = config(MAPPING), config({**MAPPING, "title": "{{ worker.title | upper }}"})
    report = compare(compile_planner(base), compile_planner(new), settled(people), NOW)
    assert {(c.kind, c.worker_id, c.detail) for c in report.changes} == {
        ("update", "hr:1", "title"),
        ("update", "hr:2", "title"),
    }
    (m,) = report.mappings
    assert (m.attribute, m.old, m.new, m.people) == ("title", "{{ worker.title }}", "{{ worker.title | upper }}", 2)


def test_nobody_changes_when_the_configs_agree():
    people = [worker(i) for i in range(5)]
    cfg = config(MAPPING)
    report = compare(compile_planner(cfg), compile_planner(cfg), settled(people), NOW, targets_alike=True)
    assert report.changes == [] and report.population == 5


def test_a_kind_it_does_not_know_is_a_section_of_its_own():
    """The approve helper's `pending_approval` (or any later kind) is compared as it is, never a crash."""
    waiting = Action.model_construct(
        worker_id="hr:1", target="app", action="pending_approval", groups=["payroll"], attributes={}, effective_at=None
    )
    changes = _target_changes("app", None, [], [waiting], "hr:1")
    assert [(c.kind, c.detail) for c in changes] == [("pending_approval", "payroll")]
    undone = _target_changes("app", None, [waiting], [], "hr:1")
    assert [c.section for c in undone] == ["pending_approval (no longer)"]
    report = DiffReport(population=1, changes=[*changes, Change("app", ActionKind.create, "hr:1")])
    text = markdown(report, [])
    assert "app: pending_approval (1)" in text and "app: accounts created (1)" in text
    console = Console(record=True, width=120)
    print_report(console, report, [])
    assert "pending_approval" in console.export_text()


def test_the_comment_fits_github_and_says_what_it_left_out():
    changes = [Change("app", "add_groups", f"hr:{i}", f"group-{i % 40}", ("a-long-policy-name",)) for i in range(4_000)]
    report = DiffReport(
        population=4_000, changes=changes, names={f"hr:{i}": f"Person Number {i}" for i in range(4_000)}
    )
    text = markdown(report, ["changes>10: 4000"])
    assert len(text) <= COMMENT_LIMIT < 65_536
    assert "<details><summary>app: groups granted (4000)</summary>" in text
    assert "rows left out to fit a comment" in text and "provisioner diff --json" in text
    small = markdown(DiffReport(population=3, changes=changes[:3]), [])
    assert "<details>" not in small and "left out" not in small


def test_cells_carry_no_markup_from_the_data():
    report = DiffReport(population=1, changes=[Change("app", "create", "hr:1")], names={"hr:1": "<img src=x> | `x`"})
    text = markdown(report, [])
    assert "| `hr:1 (<img src=x> \\| 'x')` |" in text  # a code span: GitHub shows the markup as text


def test_names_and_groups_from_hr_cannot_link_mention_or_embed_in_a_comment():
    # A name or a group rendered from an HR field that is markdown: outside a code span GitHub
    # would render a link, load an image, or notify a team.
    name, group = "![p](https://evil.example/t.png) [IT](https://evil.example) @acme/admins", "[x](https://e.example)"
    report = DiffReport(population=1, changes=[Change("app", "add_groups", "hr:1", detail=group)], names={"hr:1": name})
    rows = [line for line in markdown(report, []).splitlines() if line.startswith("| hr:1") or "hr:1" in line]
    assert rows == [f"| `hr:1 ({name})` | `{group}` |  |"]


def test_gates_parse_and_trip():
    report = DiffReport(changes=[Change("app", "disable", "hr:1"), Change("pay", "delete", "hr:2")])
    assert Gate.parse("deprovisions>1").tripped(report) == "deprovisions>1: 2"
    assert Gate.parse("deprovisions > 2").tripped(report) is None
    assert Gate.parse("target:pay").tripped(report) == "target:pay: 1 change in pay"
    with pytest.raises(ValueError, match="deprovisions>N"):
        Gate.parse("deletes>1")


def test_a_pseudonymous_export_keeps_references_and_drops_names():
    people = [worker(1), worker(2, manager_id="hr:1", work_email="p2@example.com")]
    cfg = config({**MAPPING, "manager.value": "{{ worker.manager_id }}", "emails": "{{ worker.work_email }}"})
    fields = referenced_fields([cfg])
    assert {"department", "title", "manager_id", "work_email", "status"} <= fields
    population = settled(people)
    one = export(population, fields, with_names=False, key_env="DIFF_TEST_KEY_UNSET")
    text = str(one)
    assert "example.com" not in text and "P1" not in text and "Lee" not in text and "'hr:1'" not in text
    ids = {w["id"] for w in one["workers"]}
    assert next(w for w in one["workers"] if "manager_id" in w)["manager_id"] in ids
    assert {link["worker_id"] for link in one["links"]} <= ids and "attributes" not in one["links"][0]
    other = export(population, fields, with_names=False, key_env="DIFF_TEST_KEY_UNSET")
    assert {w["id"] for w in other["workers"]}.isdisjoint(ids)  # a random key per export: unlinkable


def test_a_pseudonymous_export_leaves_out_the_hr_employee_number():
    # The number HR gives a person names them to anyone with HR access, like their email does.
    cfg = config({**MAPPING, "employeeNumber": "{{ worker.employee_number }}"})
    fields = referenced_fields([cfg])
    assert "employee_number" in fields
    one = export(settled([worker(1, employee_number="E-1001")]), fields, with_names=False, key_env=None)
    assert "E-1001" not in str(one) and "employee_number" not in one["workers"][0]


def test_a_keyed_export_is_stable(monkeypatch):
    monkeypatch.setenv("DIFF_TEST_KEY", "k" * 32)
    population = settled([worker(1)])
    first = export(population, {"department"}, with_names=False, key_env="DIFF_TEST_KEY")
    again = export(population, {"department"}, with_names=False, key_env="DIFF_TEST_KEY")
    assert first["workers"] == again["workers"] and first["workers"][0]["id"].startswith("hr:")
    named = export(population, {"department"}, with_names=True, key_env="DIFF_TEST_KEY")
    assert named["workers"][0]["id"] == "hr:1" and named["workers"][0]["first_name"] == "P1"


def test_a_store_behind_the_base_config_is_told_from_what_people_hold():
    """Nobody holds the app yet (the base config was never synced): a change that drops the grant
    deletes nobody; it only no longer creates what the base would."""
    people = [worker(1), worker(2, department="Sales")]
    base, new = config(MAPPING), Config.model_validate({**config(MAPPING).model_dump(), "policies": []})
    report = compare(compile_planner(base), compile_planner(new), Population(people, {}), NOW)
    assert sorted(c.section for c in report.changes) == ["add_groups (no longer)", "create (no longer)"]
    assert report.deprovisions() == 0 and report.changes[0].policies == ("eng",)
    assert "accounts created (no longer)" in markdown(report, [])


def test_a_base_ref_that_looks_like_an_option_is_refused_before_git_reads_it(tmp_path: Path):
    """`git show --output=FILE` writes wherever FILE says: a ref is never an option."""
    config = tmp_path / "c.yaml"
    config.write_text("targets: []\n")
    git = ["git", "-C", str(tmp_path), "-c", "user.email=t@t", "-c", "user.name=t"]
    for step in (["init", "-q"], ["add", "c.yaml"], ["commit", "-qm", "one"]):
        subprocess.run([*git, *step], check=True)
    (tmp_path / "out:.").mkdir()  # git would write `<ref>:./c.yaml` there
    (tmp_path / "work").mkdir()
    with pytest.raises(typer.Exit) as caught:
        config_at(f"--output={tmp_path}/out", config, tmp_path / "work")
    assert caught.value.exit_code == 2 and not (tmp_path / "out:." / "c.yaml").exists()

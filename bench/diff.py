"""`provisioner diff --base-ref HEAD~1` on a store of N people: the whole command, as CI runs it.

    python bench/diff.py [--people 10000] [--runs 3]

A SQLite store holds N snapshots and their links in the steady state of the base config (three
targets, every person in one to three of them with groups), written straight into the store (not
timed). A git repository holds the config in two commits: the second moves one department's group.
Prints the wall time of each run of the command (a fresh process: imports, config loading, git,
reading the store, planning everyone twice, the report) and the people it names.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioner.engine.config import Config
from provisioner.engine.contracts.events import internal_event
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.records import Link
from provisioner.engine.runtime.policy_diff import play
from provisioner.engine.runtime.wiring import compile_planner
from provisioner.engine.store import Store

DEPARTMENTS = ["Engineering", "Sales", "Support", "Finance", "Marketing", "Legal", "People"]


def config(store_url: str, engineering_group: str) -> dict[str, Any]:
    targets = [
        {"name": n, "type": "scim", "base_url": f"http://127.0.0.1:9/{n}"} for n in ("chat", "github", "payroll")
    ]
    return {
        "store": {"url": store_url},
        "sources": [{"name": "hr", "type": "file", "path": "people.csv"}],
        "targets": targets,
        "policies": [
            {
                "name": "everyone",
                "when": "true",
                "grant": [{"target": "chat", "groups": ["all", "dept-{{ worker.department | slug }}"]}],
            },
            {
                "name": "engineering",
                "when": "worker.department == 'Engineering'",
                "grant": [{"target": "github", "groups": [engineering_group]}],
            },
            {
                "name": "finance",
                "when": "worker.department == 'Finance'",
                "grant": [{"target": "payroll", "groups": ["payroll-users"]}],
            },
        ],
    }


def seed(store_url: str, base: Config, n: int) -> None:
    """Snapshots and links as a sync under the base config leaves them."""
    planner = compile_planner(base)
    workers = [
        Worker(
            id=f"hr:{i}",
            source="hr",
            remote_id=str(i),
            first_name=f"F{i}",
            last_name=f"L{i}",
            work_email=f"u{i}@bench.example",
            department=DEPARTMENTS[i % len(DEPARTMENTS)],
            title="Engineer",
            employment_type="full_time",
            status="active",
        )
        for i in range(n)
    ]
    now = datetime.now(UTC)
    links = []
    for w in workers:
        actions = planner.plan(internal_event("bench", w.id, w, "seed"), {}, now)
        for target in {a.target for a in actions}:
            out = play(None, [a for a in actions if a.target == target])
            links.append(
                Link(
                    worker_id=w.id,
                    target=target,
                    account_id=f"{target}-{w.remote_id}",
                    groups=sorted(out.groups),
                    attributes=out.attributes,
                )
            )
    store = Store(store_url)
    with store.unit() as s:
        store.snapshots.upsert(s, "hr", workers)
        store.links.upsert(s, links)
    store.close()


def _children_cpu() -> float:
    """CPU seconds of the finished child processes: the figure a loaded machine does not inflate."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        url = f"sqlite:///{repo / 'state.db'}"
        path = repo / "provisioner.yaml"
        git = ["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=bench@example.com"]
        subprocess.run([*git, "init", "-q"], check=True)
        path.write_text(json.dumps(config(url, "eng"), indent=1))
        subprocess.run([*git, "add", "provisioner.yaml"], check=True)
        subprocess.run([*git, "commit", "-qm", "base"], check=True)
        seed(url, Config.model_validate(config(url, "eng")), args.people)
        path.write_text(json.dumps(config(url, "eng-platform"), indent=1))
        subprocess.run([*git, "commit", "-qam", "move engineering's group"], check=True)
        command = [
            sys.executable,
            "-m",
            "provisioner.engine.cli",
            "diff",
            "-c",
            str(path),
            "--base-ref",
            "HEAD~1",
            "--json",
        ]
        times, cpu = [], []
        for _ in range(args.runs):
            start, used = time.perf_counter(), _children_cpu()
            ran = subprocess.run(command, capture_output=True, check=False)
            times.append(time.perf_counter() - start)
            cpu.append(_children_cpu() - used)
            if ran.returncode != 0:
                sys.exit(f"diff failed ({ran.returncode}): {ran.stderr.decode()}")
        report = json.loads(ran.stdout)
        used = _children_cpu()  # the start-up every command pays: imports, before any work
        subprocess.run([sys.executable, "-m", "provisioner.engine.cli", "--version"], capture_output=True, check=True)
        startup = _children_cpu() - used
    print(
        f"provisioner diff --base-ref HEAD~1 over {args.people:,} people: "
        f"min {min(times):.2f} s, median {sorted(times)[len(times) // 2]:.2f} s, max {max(times):.2f} s "
        f"(CPU median {sorted(cpu)[len(cpu) // 2]:.2f} s, of which {startup:.2f} s the start-up of any command; "
        f"{report['people_affected']} people affected, {len(report['changes'])} changes)"
    )


if __name__ == "__main__":
    main()

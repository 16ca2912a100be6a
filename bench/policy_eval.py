"""Policy evaluation speed: worker × policy evaluations per second.

    python bench/policy_eval.py [--workers 10000] [--policies 20]

Each worker goes through `PolicySet.entitlements` (every condition, the groups of every matching
grant, deny, lifecycle) as the planner does for each event. The same run with the fast path turned
off measures plain sandboxed Jinja2, for the ratio. Target: ≥ 50,000 evaluations/s.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioner.engine.config import PolicyConfig
from provisioner.engine.contracts.models import Worker
from provisioner.rules.policy import PolicySet

DEPARTMENTS = ["Engineering", "Sales", "Finance", "People", "Support", "Product", "Design", "Legal"]
TYPES = ["full_time", "part_time", "contractor", "intern"]
STATUSES = ["active"] * 8 + ["pending", "on_leave", "terminated"]
COUNTRIES = ["US", "GB", "DE", "FR", "IN", "BR"]
SHAPES = [
    "worker.department == '{dept}'",
    "worker.department == '{dept}' and worker.employment_type in ['full_time', 'part_time']",
    "worker.country in ['{country}', 'US'] and worker.employment_type != 'intern'",
    "worker.employment_type == 'contractor' and worker.department == '{dept}'",
    "'Manager' in (worker.title or '') and worker.department == '{dept}'",
    "worker.department | lower == '{dept_lower}' or worker.country == '{country}'",
]


def policies(n: int, targets: list[str]) -> list[PolicyConfig]:
    rng = random.Random(7)
    out = []
    for i in range(n):
        dept, country = rng.choice(DEPARTMENTS), rng.choice(COUNTRIES)
        when = SHAPES[i % len(SHAPES)].format(dept=dept, dept_lower=dept.lower(), country=country)
        grant = [{"target": targets[i % len(targets)], "groups": ["all", "dept-{{ worker.department | slug }}"]}]
        out.append(
            PolicyConfig(
                name=f"p{i}",
                when=when,
                grant=grant,  # type: ignore[arg-type]
                deny=[targets[(i + 1) % len(targets)]] if i % 7 == 6 else [],
            )
        )
    return out


def workers(n: int) -> list[Worker]:
    rng = random.Random(11)
    return [
        Worker(
            id=f"hr:{i}",
            source="hr",
            remote_id=str(i),
            first_name=f"F{i}",
            last_name="L",
            department=rng.choice(DEPARTMENTS),
            employment_type=rng.choice(TYPES),
            status=rng.choice(STATUSES),
            country=rng.choice(COUNTRIES),
            title=rng.choice(["Engineer", "Manager", "Engineering Manager", None]),
            start_date=date(2027, 1, 4),
            termination_date=None,
        )
        for i in range(n)
    ]


def measure(policy_set: PolicySet, people: list[Worker], now: datetime) -> float:
    start = time.perf_counter()
    for worker in people:
        policy_set.entitlements(worker, now)
    return time.perf_counter() - start


def without_fast_path(policy_set: PolicySet) -> None:
    for policy in policy_set.policies:
        policy.condition._fast = None
        for grant in policy.grants:
            for template in grant.groups:
                template._fast = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=10_000)
    parser.add_argument("--policies", type=int, default=20)
    args = parser.parse_args()
    targets = ["slack", "google", "github", "jira", "zoom"]
    people, now = workers(args.workers), datetime.now(UTC)
    fast = PolicySet.compile(policies(args.policies, targets), targets)
    measure(fast, people[:200], now)  # warm-up
    fast_s = measure(fast, people, now)
    slow = PolicySet.compile(policies(args.policies, targets), targets)
    without_fast_path(slow)
    slow_s = measure(slow, people[: max(1, args.workers // 5)], now) * 5
    evaluations = args.workers * args.policies
    print(f"workers × policies:        {args.workers} × {args.policies} = {evaluations} evaluations")
    print(f"engine (compiled):         {fast_s:7.2f} s  {evaluations / fast_s:10,.0f} evaluations/s  (target ≥ 50,000)")
    print(
        f"plain sandboxed Jinja2:    {slow_s:7.2f} s  {evaluations / slow_s:10,.0f} evaluations/s  "
        f"(estimated from 1/5 of the workers)"
    )
    print(f"ratio:                     {slow_s / fast_s:7.1f}x")


if __name__ == "__main__":
    main()

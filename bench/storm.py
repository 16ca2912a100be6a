"""A fault storm: 1,000 workers synced through a proxy failing 30 % of requests in front of a real
scim2-server (tests/storm.py; the suite runs the same with 200).

    python bench/storm.py [--workers 1000] [--share 0.3] [--window 10] [--seed 7]

Prints the figures: requests faulted (by kind), durable retries made, time to converge, the exit
code of each `sync --once`, and whether every account, attribute, group and link ended exactly right.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.storm import storm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--share", type=float, default=0.3, help="share of requests faulted in the window")
    parser.add_argument("--window", type=float, default=10.0, help="seconds of faults from the first request")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = storm(args.workers, Path(tmp), share=args.share, window=args.window, seed=args.seed)
    print(figures.as_json())
    print(
        f"{figures.requests_faulted} of {figures.requests_seen} requests faulted; "
        f"{figures.retries_scheduled} durable retries made, {figures.items_healed_by_retry} items healed by "
        f"them, {figures.dead_letters} dead letters, {figures.adopted_after_conflict} lost creates adopted; "
        f"converged in {figures.seconds_to_converge}s over {len(figures.syncs)} syncs (exit codes {figures.syncs}); "
        + ("every account, attribute, group and link exactly right" if not figures.problems else "PROBLEMS")
    )
    return 1 if figures.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())

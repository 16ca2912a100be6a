"""The peer of an initial sync: a bare httpx loop POSTing the same users, as its own process.

    python bench/raw_loop.py SCIM_URL PEOPLE_JSON CONCURRENCY

Builds each user with the engine's own default mapping (so both sides send the same bodies) and
POSTs them at the given concurrency; exits non-zero if any request fails.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from initial_sync import raw_loop


def main() -> None:
    url, rows_file, concurrency = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    asyncio.run(raw_loop(url, json.loads(rows_file.read_text()), concurrency))


if __name__ == "__main__":
    main()

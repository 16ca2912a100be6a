"""Process identity and liveness: who holds a lease, and whether that process still exists.

A lease owner names its host, pid and the process's start time. On the same host a pid can be
checked at once, and the start time tells a recycled pid from the process that took the lease, so
a restart after a crash (kill -9, OOM) takes the dead process's leases over without waiting out
their TTL. Owners on other hosts cannot be checked: for them the TTL stays the only way.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import signal
import socket
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None when it does not
    exist; "0" where the platform cannot tell (the pid check alone then decides)."""
    stat = Path(f"/proc/{pid}/stat")
    if sys.platform.startswith("linux"):
        try:
            # The command name (field 2) is in parentheses and may hold spaces: split after it.
            return stat.read_text().rsplit(")", 1)[1].split()[19]
        except (OSError, IndexError):
            return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # exists, owned by someone else
        pass
    return "0"


def new_owner() -> str:
    """A lease owner for one engine in this process: host:pid:start:nonce. The nonce keeps two
    engines in one process (tests, an embedding application) apart."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{start_time(pid) or '0'}:{uuid.uuid4().hex[:6]}"


def owner_is_gone(owner: str) -> bool:
    """True only when the owner is provably dead: on this host, and its pid is gone or now
    belongs to a process started at another time. Anything unparsable or remote counts as alive."""
    parts = owner.rsplit(":", 3)
    if len(parts) != 4 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    started = start_time(int(parts[1]))
    return started is None or started != parts[2]


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that makes a child process get SIGKILL when the engine dies, even by kill -9
    (Linux: prctl PR_SET_PDEATHSIG); None where the platform has no such thing."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    parent = os.getpid()

    def arm() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


def collect_rarely() -> None:
    """Full cyclic garbage collections a hundred times less often than CPython's default.

    A sync of 100,000 people keeps hundreds of thousands of objects alive (snapshot digests,
    events in flight), and the default thresholds scan all of them in a full collection every few
    hundred thousand allocations: measured, that was a fifth of a first sync's time. Almost nothing
    the engine allocates forms reference cycles (reference counting frees it), so little waits."""
    gc.set_threshold(700, 10, 1000)


def freeze_startup() -> None:
    """What starting the engine imported and built lives as long as the process: the collector
    stops scanning it (`gc.freeze`). Once per process, so that an embedding that starts engines
    repeatedly (the tests) never freezes an earlier engine's garbage."""
    if gc.get_freeze_count() == 0:
        gc.freeze()

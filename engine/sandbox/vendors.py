"""The sandbox: every vendor emulator on one port, and a config that points the connectors at it.

Nothing here names a vendor: each `sources/<vendor>/emulator.py` says what the sandbox needs of it
(`sandbox_settings`, and optionally `SANDBOX_CREDENTIALS` and `SANDBOX_RANK`), so a new vendor
folder with an emulator is served and printed without an edit here.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount

from provisioner.sources import emulated_types, emulator

LAST = 1_000  # the rank of an emulator that names none: after those that do


def _vendors() -> list[str]:
    """The emulated vendors in the order their entries are printed."""
    return sorted(emulated_types(), key=lambda kind: (getattr(emulator(kind), "SANDBOX_RANK", LAST), kind))


def sandbox_app(people: int = 25) -> tuple[Starlette, dict[str, Any]]:
    """Every vendor emulator mounted under /<vendor>, seeded with fake people."""
    states = {
        kind: emulator(kind).State(**getattr(emulator(kind), "SANDBOX_CREDENTIALS", {})) for kind in emulated_types()
    }
    for state in states.values():
        state.seed(people)
    routes = [Mount(f"/{kind}", app=emulator(kind).create_app(state)) for kind, state in states.items()]
    return Starlette(routes=routes), states


def sandbox_config(url: str, states: dict[str, Any]) -> str:
    """The `sources:` block for the emulators served at `url`, each with its state's credentials."""
    entries = [
        f"  - name: {kind}\n    type: {kind}\n" + emulator(kind).sandbox_settings(f"{url}/{kind}", states[kind])
        for kind in _vendors()
        if kind in states
    ]
    return "sources:\n" + "".join(entries)

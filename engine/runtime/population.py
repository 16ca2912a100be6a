"""Everyone the engine knows, for `provisioner diff`: read from the store (snapshots and links,
read-only: no migration, no write, so a read-only replica serves) or from a population file made by
`provisioner population export`, which carries only the Worker fields the policies read and, unless
asked for names, pseudonymous ids (a keyed HMAC of each id), so CI sees no names or emails."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from provisioner.engine.config import Config
from provisioner.engine.contracts.ids import WorkerId
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.records import Link
from provisioner.engine.kit.templating import Condition, Template, attributes_of
from provisioner.engine.store.db import Database
from provisioner.engine.store.links import Links
from provisioner.engine.store.snapshots import Snapshots
from provisioner.targets import mapping_of

FORMAT = "provisioner.population/1"
# Read by the lifecycle whatever the policies say (scope by status and dates), and the ids.
LIFECYCLE_FIELDS = frozenset({"id", "source", "remote_id", "status", "start_date", "termination_date", "timezone"})
# Who a person is: left out of a pseudonymous file even when a policy or mapping reads them.
PERSONAL_FIELDS = frozenset(
    {
        "first_name",
        "last_name",
        "preferred_name",
        "display_name",
        "work_email",
        "personal_email",
        "username",
        "employee_number",
    }
)
NAME_FIELDS = ("first_name", "last_name", "display_name", "work_email")


@dataclass
class Population:
    workers: list[Worker] = field(default_factory=list)
    links: dict[str, dict[str, Link]] = field(default_factory=dict)  # worker id → target → link
    gone: list[str] = field(default_factory=list)  # linked, but no longer listed by their source
    fields: frozenset[str] | None = None  # the Worker fields it carries (None: all of them)
    pseudonymous: bool = False
    origin: str = "store"
    attributes: bool = True  # the links carry what was written (a pseudonymous file leaves it out)

    def name_of(self, worker_id: str, workers: dict[str, Worker]) -> str | None:
        worker = workers.get(worker_id)
        if worker is None:
            return None
        full = " ".join(n for n in (worker.preferred_name or worker.first_name, worker.last_name) if n)
        return worker.display_name or full or None


def _by_worker(links: Iterable[Link]) -> dict[str, dict[str, Link]]:
    out: dict[str, dict[str, Link]] = {}
    for link in links:
        out.setdefault(link.worker_id, {})[link.target] = link
    return out


def from_store(url: str, sources: Iterable[str]) -> Population:
    """Snapshots of these sources (pre-hires whose accounts went to a successor left out) and every
    link, without migrating or writing anything."""
    db = Database(url)
    try:
        snapshots = Snapshots(db)
        handed = snapshots.handovers()
        workers: list[Worker] = []
        for source in sources:
            stored = snapshots.of_source(source)
            stored.preload(list(stored))  # in bulk: a few reads for the whole source
            workers += [w for _, w in stored.values() if w.id not in handed]
        links = _by_worker(Links(db).all())
    finally:
        db.engine.dispose()
    known = {w.id for w in workers}
    configured = set(sources)
    gone = sorted(w for w in links if w not in known and w not in handed and WorkerId.parse(w).source in configured)
    return Population(workers, links, gone)


def referenced_fields(configs: Iterable[Config]) -> set[str]:
    """The Worker fields the policies and mappings of these configs read (with the lifecycle's)."""
    found = set(LIFECYCLE_FIELDS)
    for config in configs:
        groups = [t for p in config.policies for g in p.grant for t in g.groups]
        templates = groups + [t for target in config.targets for t in mapping_of(target).values()]
        for condition in (Condition(p.when) for p in config.policies):
            found.update(attributes_of(condition.tree, "worker"))
        for template in (Template(t) for t in templates):
            found.update(attributes_of(template.tree, "worker"))
    if "in_employment" in found:  # a property: what it reads
        found.add("status")
    return found & set(Worker.model_fields)


class Pseudonyms:
    """Keyed HMAC-SHA256 of an id: the same id gives the same pseudonym within one key, so
    references (manager_id) still meet; without the key nobody maps it back."""

    def __init__(self, key: bytes | None):
        self.key = key

    def __call__(self, value: str) -> str:
        if self.key is None:
            return value
        return hmac.new(self.key, value.encode(), hashlib.sha256).hexdigest()[:20]

    def worker_id(self, worker_id: str) -> str:
        parsed = WorkerId.parse(worker_id)
        return f"{parsed.source}:{self(worker_id)}" if self.key is not None else worker_id


def export(population: Population, fields: set[str], *, with_names: bool, key_env: str | None) -> dict[str, Any]:
    """The population as a file's JSON: only `fields` (and names with `with_names`); ids pseudonymous
    unless `with_names`, keyed from the environment variable `key_env` or a random salt."""
    key: bytes | None = None
    if not with_names:
        secret = os.environ.get(key_env) if key_env else None
        key = secret.encode() if secret else os.urandom(32)
    pseudo = Pseudonyms(key)
    kept = set(fields) | (set(NAME_FIELDS) if with_names else set())
    if not with_names:
        kept -= PERSONAL_FIELDS
    workers = []
    for worker in population.workers:
        data = worker.model_dump(mode="json", include=kept, exclude_none=True)
        data["id"] = pseudo.worker_id(worker.id)
        data["remote_id"] = WorkerId.parse(data["id"]).remote_id
        if worker.manager_id:
            data["manager_id"] = pseudo.worker_id(worker.manager_id) if "manager_id" in kept else None
        workers.append({k: v for k, v in data.items() if v is not None})
    links = [
        {
            "worker_id": pseudo.worker_id(link.worker_id),
            "target": link.target,
            "account_id": pseudo(link.account_id),
            "active": link.active,
            "groups": link.groups,
            # What we wrote holds names and addresses; a pseudonymous file compares the mappings
            # of the two configs against each other instead.
            **({"attributes": link.attributes} if with_names else {}),
        }
        for targets in population.links.values()
        for link in targets.values()
    ]
    return {
        "format": FORMAT,
        "pseudonymous": key is not None,
        "attributes": with_names,
        "fields": sorted(kept),
        "gone": [pseudo.worker_id(w) for w in population.gone],
        "workers": workers,
        "links": links,
    }


def read_file(path: Path) -> Population:
    """A population file, or ValueError saying in one line what is wrong with it."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a population file (make one with `provisioner population export`)")
    try:
        workers = [Worker.model_validate(w) for w in data.get("workers", [])]
        links = [Link.model_validate(link) for link in data.get("links", [])]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"{path}: a record is not valid: {where}: {first['msg']}") from None
    return Population(
        workers,
        _by_worker(links),
        [str(w) for w in data.get("gone", [])],
        fields=frozenset(data.get("fields", [])),
        pseudonymous=bool(data.get("pseudonymous")),
        origin=str(path),
        attributes=bool(data.get("attributes")),
    )

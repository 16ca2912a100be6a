"""The state store: one small repository per concern over one database.

SQLModel over any SQLAlchemy URL: SQLite by default, PostgreSQL unchanged for scale-out. The
repositories take and return plain records (`provisioner.engine.contracts.records`) or the rows
of tables only the runtime reads; every multi-row change is one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlmodel import Session

from provisioner.engine.config import RetryConfig
from provisioner.engine.store.access import Access
from provisioner.engine.store.approvals import Approvals
from provisioner.engine.store.claims import Claims
from provisioner.engine.store.db import Database, as_utc, store_error
from provisioner.engine.store.engines import Engines
from provisioner.engine.store.failures import Failures
from provisioner.engine.store.identities import Identities
from provisioner.engine.store.links import Links
from provisioner.engine.store.log import ProvisioningLog
from provisioner.engine.store.migrate import migrate
from provisioner.engine.store.outbox import Outbox
from provisioner.engine.store.profiles import Profiles
from provisioner.engine.store.quarantine import Quarantine
from provisioner.engine.store.references import References
from provisioner.engine.store.reports import Reports
from provisioner.engine.store.schedule import Schedule
from provisioner.engine.store.search import Search
from provisioner.engine.store.sessions import Sessions
from provisioner.engine.store.snapshots import Snapshots
from provisioner.engine.store.sources import SourceStates
from provisioner.engine.store.tables import Deferred, JobRun, OutboxEvent, SourceState

__all__ = ["Deferred", "JobRun", "OutboxEvent", "SourceState", "Store", "as_utc", "store_error"]


class Store:
    def __init__(self, url: str, retry: RetryConfig | None = None):
        self.url = url
        self.db = Database(url)
        self.engine = self.db.engine
        migrate(self.engine)
        self.snapshots = Snapshots(self.db)
        self.outbox = Outbox(self.db)
        self.failures = Failures(self.db, retry)
        self.references = References(self.db)
        self.links = Links(self.db)
        self.schedule = Schedule(self.db)
        self.sources = SourceStates(self.db)
        self.log = ProvisioningLog(self.db)
        self.quarantine = Quarantine(self.db)
        self.reports = Reports(self.db)
        self.search = Search(self.db)
        self.claims = Claims(self.db)
        self.engines = Engines(self.db)
        self.profiles = Profiles(self.db)
        self.access = Access(self.db)
        self.sessions = Sessions(self.db)
        self.approvals = Approvals(self.db)
        self.identities = Identities(self.db)

    @contextmanager
    def unit(self) -> Iterator[Session]:
        """One unit of work: the caller owns the transaction (committed when the block ends, rolled
        back when it raises) and hands the session to each repository method that takes one."""
        with self.db.session() as s:
            yield s

    def close(self) -> None:
        self.engine.dispose()

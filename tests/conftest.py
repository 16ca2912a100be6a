from __future__ import annotations

import contextlib
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from provisioner.engine.config import Config
from provisioner.engine.kit.servers import BackgroundServer, scim_app, serve_asgi, serve_wsgi
from provisioner.sources.bamboohr.emulator import EmulatorState, create_app
from tests.cluster import TansuCluster, tansu_cluster
from tests.counting import CountingApp
from tests.processes import SESSION_MARKER, session_brokers, wait_for

PG_ADMIN_URL = os.environ.get("PROVISIONER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def pytest_configure(config: pytest.Config) -> None:
    """pytest-xdist's workers inherit the controller's terminal width as COLUMNS. The CLI's rich
    consoles fix their width to it when first imported, and the COLUMNS a test gives a command
    (CliRunner's env) would no longer count: without it, a worker sizes them as a lone run does."""
    os.environ.pop("COLUMNS", None)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`pytest -m fast` runs in this process alone: a fast file's PostgreSQL variants (the
    `store_url` parameter) run with the whole suite (`pytest`). Any other selection is pytest's own."""
    if (config.getoption("markexpr") or "").strip() != "fast":
        return
    elsewhere = [item for item in items if item.get_closest_marker("postgres")]
    if elsewhere:
        config.hook.pytest_deselected(items=elsewhere)
        items[:] = [item for item in items if not item.get_closest_marker("postgres")]


@pytest.fixture(scope="session", autouse=True)
def no_broker_outlives_the_suite() -> Iterator[None]:
    """The suite fails if an embedded broker it started (in this process or in an engine process
    it ran) is still there at the end. The marker in the environment, inherited by every child,
    tells this session's brokers from those of other runs on the machine."""
    os.environ[SESSION_MARKER] = uuid.uuid4().hex
    yield
    try:
        wait_for(lambda: not session_brokers(), timeout=10, what="every embedded broker gone")
    except AssertionError:
        left = session_brokers()
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        raise AssertionError(f"{len(left)} embedded broker processes outlived the tests: {sorted(left)}") from None


@pytest.fixture
def scim_server() -> Iterator[BackgroundServer]:
    with serve_wsgi(scim_app()) as server:
        yield server


@pytest.fixture
def scim(scim_server: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=scim_server.url) as client:
        yield client


@pytest.fixture
def counting_scim() -> Iterator[tuple[CountingApp, BackgroundServer, httpx.Client]]:
    """A scim2-server whose user writes are counted, and failed while `failing` is set."""
    counting = CountingApp(scim_app())
    with serve_wsgi(counting) as server, httpx.Client(base_url=server.url) as client:
        yield counting, server, client


@pytest.fixture
def bamboo_state() -> EmulatorState:
    state = EmulatorState()
    state.seed(5)
    return state


@pytest.fixture
def bamboo(bamboo_state: EmulatorState) -> Iterator[BackgroundServer]:
    with serve_asgi(create_app(bamboo_state)) as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same tests on SQLite and on the local PostgreSQL (a fresh database each)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    name = f"prov_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # pragma: no cover - only without a local PostgreSQL
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def make_config(store_url: str, scim_url: str, source: dict[str, Any], **extra: Any) -> Config:
    return Config.model_validate(
        {
            "store": {"url": store_url},
            "engine": {"concurrency": 4},
            "sources": [source],
            "targets": [
                {"name": "app", "type": "scim", "base_url": scim_url, "max_attempts": 2, **extra.pop("target", {})}
            ],
            "policies": extra.pop(
                "policies", [{"name": "everyone", "when": "true", "grant": [{"target": "app", "groups": ["staff"]}]}]
            ),
            **extra,
        }
    )


def person(i: int, **kw: Any) -> dict[str, Any]:
    """Person `i` as a file source's record: active, full time; `kw` adds or replaces fields."""
    return {
        "remote_id": str(i),
        "first_name": f"P{i}",
        "last_name": "Lee",
        "work_email": f"p{i}@example.com",
        "employment_type": "full_time",
        "status": "active",
        **kw,
    }


def scim_users(client: httpx.Client) -> list[dict[str, Any]]:
    return client.get("/Users", params={"count": 1000}).json().get("Resources", [])


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[TansuCluster]:
    """Two Tansu brokers on one S3 bucket (moto), shared by the tests of a session; stopped at its end."""
    with tansu_cluster(brokers=2) as cluster:
        yield cluster


def in_flight(store: Any, *event_ids: str, worker_id: str = "hr:1") -> None:
    """Put events of these ids in the outbox, as a poll would have: recording an outcome confirms
    (deletes) its event there, and an event not there counts as applied."""
    from datetime import UTC, datetime

    from provisioner.engine.contracts.events import EventData, EventType, WorkerEvent

    now = datetime.now(UTC)
    store.outbox.add(
        [
            WorkerEvent(id=i, source="test", type=EventType.updated, subject=worker_id, time=now, data=EventData())
            for i in event_ids
        ]
    )

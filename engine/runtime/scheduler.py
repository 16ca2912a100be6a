"""Scheduled jobs: polls, due deferred actions, due retries of failed writes, reconciliation —
APScheduler with its job store in the database, so a restart neither loses nor doubles a job, and a
lease in the database, so with several engine processes exactly one runs each job per period.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar, copy_context
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from provisioner.engine.config import Config, parse_duration
from provisioner.engine.contracts.protocols import SourceError
from provisioner.engine.runtime.protocol import Engine
from provisioner.engine.runtime.views import record_reconcile
from provisioner.engine.store.migrate import create_table_of
from provisioner.reconcile.report import as_json as report_json
from provisioner.reconcile.run import apply_fixes, reconcile

log = logging.getLogger("provisioner.scheduler")

JOB_TABLE = "scheduler_jobs"
Scheduled = tuple[str, str, CronTrigger | IntervalTrigger]  # kind, name, when


def trigger(schedule: str) -> CronTrigger | IntervalTrigger:
    """'0 3 * * *' (crontab, UTC) or an interval such as '6h'."""
    if len(schedule.split()) == 5:
        return CronTrigger.from_crontab(schedule, timezone="UTC")
    return IntervalTrigger(seconds=parse_duration(schedule))


def period_of(when: CronTrigger | IntervalTrigger) -> float:
    """Seconds between two firings, which bounds the lease: a crontab every 5 minutes needs a
    5-minute lease, not an hour's (that would skip eleven runs in twelve)."""
    if isinstance(when, IntervalTrigger):
        return when.interval.total_seconds()
    first = when.get_next_fire_time(None, datetime.now(UTC))
    second = when.get_next_fire_time(first, first + timedelta(seconds=1)) if first else None
    return (second - first).total_seconds() if first and second else 3600.0


# The engine a job runs against. A stored job holds only plain arguments (it outlives processes);
# its engine is the one whose scheduler fired it, found in the context that scheduler was started
# in: asyncio runs each callback and task in the context it was scheduled from, and the scheduler
# schedules its wakeups, and so its jobs, only from there. Two engines in one process each see
# their own.
_scheduled_for: ContextVar[Engine | None] = ContextVar("scheduled_for", default=None)


async def run_job(kind: str, name: str, period: float) -> None:
    """The one entry point every stored job names. Runs only where this period's lease was won."""
    runtime = _scheduled_for.get()
    if runtime is None or not runtime.store.schedule.acquire_lease(
        f"{kind}:{name}", runtime.owner, period * 0.8, renew=False
    ):
        return
    try:
        if kind == "poll":
            await runtime.poll(name)
        elif kind == "deferred":
            await runtime.fire_due()
        elif kind == "retries":
            runtime.retry_due()
        elif kind == "reconcile":
            result = await reconcile(runtime.parts)
            log.info("reconcile: %s", result.summary())
            for target, why in result.unlisted.items():  # the report says it too; a log reader must see it
                log.warning("reconcile: %s not reconciled: %s", target, why)
            for target, names in result.unread_groups.items():
                log.warning("reconcile: %s: members not compared (over max_response_bytes): %s", target, names)
            record_reconcile(runtime.store, report_json(result))
            if runtime.config.reconcile.fix:
                _, notes = await apply_fixes(runtime.parts, result)
                for note in notes:
                    log.warning("reconcile: %s", note)
                runtime.wake()
    except SourceError as exc:
        log.error("%s", exc, extra={"source": name} if kind == "poll" else None)
    except Exception:  # a job must never take the scheduler down; the next period tries again
        log.exception("scheduled job %s:%s failed", kind, name)


def build_scheduler(runtime: Engine) -> AsyncIOScheduler:
    """APScheduler with its stock executor and the jobs of `runtime`'s config, started (in a
    context of its own that names `runtime`: see `_scheduled_for`)."""
    jobs = SQLAlchemyJobStore(engine=runtime.store.engine, tablename=JOB_TABLE)
    create_table_of(runtime.store.engine, jobs.jobs_t)  # before start(), whose own CREATE races
    scheduler = AsyncIOScheduler(
        jobstores={"default": jobs},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        timezone="UTC",
    )
    context = copy_context()
    context.run(_scheduled_for.set, runtime)
    context.run(_start, scheduler, _jobs(runtime.config))
    return scheduler


def _jobs(config: Config) -> list[Scheduled]:
    jobs: list[Scheduled] = [("poll", s.name, IntervalTrigger(seconds=s.poll_interval)) for s in config.sources]
    jobs.append(("deferred", "all", IntervalTrigger(seconds=config.engine.deferred_interval)))
    # Looked at often enough that a retry waits about its own delay, not the deferred job's period.
    retry_every = max(0.5, min(config.engine.deferred_interval, config.retry.initial / 2))
    jobs.append(("retries", "all", IntervalTrigger(seconds=retry_every)))
    if config.reconcile.schedule:
        jobs.append(("reconcile", "all", trigger(config.reconcile.schedule)))
    return jobs


def _start(scheduler: AsyncIOScheduler, jobs: list[Scheduled]) -> None:
    """Start paused, make the stored jobs those of the config, then run: a job the config still has
    with the same trigger keeps its stored next run, so a restart neither loses nor doubles it."""
    wanted = {f"{kind}:{name}" for kind, name, _ in jobs}
    scheduler.start(paused=True)
    for job in scheduler.get_jobs():  # sources or schedules removed from the config since last time
        if job.id not in wanted:
            job.remove()
    for kind, name, when in jobs:
        job_id = f"{kind}:{name}"
        existing = scheduler.get_job(job_id)
        if existing is not None and str(existing.trigger) == str(when):
            continue  # keeps its stored next run time: a restart neither loses nor doubles it
        scheduler.add_job(
            run_job,
            when,
            args=[kind, name, period_of(when)],
            id=job_id,
            replace_existing=True,
            next_run_time=datetime.now().astimezone(),
        )
    scheduler.resume()

"""The MCP tools: the engine's own read models (what the API and the CLI answer), and requests a
person must approve. No tool lifts a halt, deletes an account or changes a policy: the write tools
only ask (engine/runtime/agent_requests.py), and tests/test_mcp_tools.py lists them to keep it so."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, ToolAnnotations

from provisioner.engine.config import moment_or_age
from provisioner.engine.contracts.records import RESULT_TONE
from provisioner.engine.kit.words import plural
from provisioner.engine.runtime import agent_requests, operations, views
from provisioner.engine.runtime.config_diff import diff_configs, diff_json, load_proposed
from provisioner.engine.runtime.mcp.answers import Answers
from provisioner.engine.runtime.mcp.caller import Caller
from provisioner.engine.runtime.mcp.pii import as_seen
from provisioner.engine.runtime.population import from_store
from provisioner.engine.runtime.wiring import Parts

READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
ASK = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)


def _count(noun: str, plural_noun: str | None = None) -> Any:
    def said(data: Any) -> str:
        return plural(len(data), noun, plural_noun)

    return said


def _receipt(data: dict[str, Any]) -> str:
    return f"request {data['id']} is {data['state']} until {data['approvers']} approves it; nothing happens before that"


def read_tools(server: MCPServer, parts: Parts, answers: Answers) -> None:
    config, store = parts.config, parts.store

    @server.tool(annotations=READ)
    async def search_people(ctx: Context, query: str = "", limit: int = 20) -> CallToolResult:
        """People whose id, name or email holds `query` (a department is not searched; a field the
        token does not see is not searched either)."""
        return await answers.answer(
            ctx,
            "search_people",
            {"query": query, "limit": limit},
            lambda c: views.workers(store, query, max(1, min(limit, 500)), c.visible),
            _count("person", "people"),
        )

    @server.tool(annotations=READ)
    async def explain_person(ctx: Context, worker_id: str) -> CallToolResult:
        """Why this person has or lacks each account: the policies that matched and why, the account,
        groups, scheduled actions, approvals, links, recent log and open failures (`provisioner explain`)."""
        return await answers.answer(
            ctx,
            "explain_person",
            {"worker_id": worker_id},
            lambda _: views.worker_detail(parts, worker_id),
            lambda d: f"{d['id']}: in scope of {plural(sum(t['in_scope'] for t in d['targets'].values()), 'target')}",
        )

    @server.tool(annotations=READ)
    async def plan_person(ctx: Context, worker_id: str) -> CallToolResult:
        """Dry run for one person: the actions a sync would take now (`provisioner plan`). Changes nothing."""
        return await answers.answer(
            ctx,
            "plan_person",
            {"worker_id": worker_id},
            lambda _: operations.plan_worker(parts, worker_id),
            lambda d: plural(len(d["actions"]), "action"),
        )

    def diffed(caller: Caller, proposed_yaml: str, targets: list[str] | None) -> dict[str, Any]:
        proposed = load_proposed(proposed_yaml)
        names = {t.name for t in config.targets} | {t.name for t in proposed.targets}
        if unknown := sorted(set(targets or []) - names):
            raise ValueError(f"unknown target {', '.join(unknown)} (known: {', '.join(sorted(names))})")
        people = from_store(config.store.url, [s.name for s in proposed.sources])
        if caller.visible is not None:
            # The proposal's expressions are the caller's own: they read only what the caller sees,
            # and the accounts count as written by the running config from that (nothing written leaks).
            visible = caller.visible
            people = replace(people, workers=[as_seen(w, visible) for w in people.workers], attributes=False)
        answer = diff_json(*diff_configs(config, proposed, people, targets or None))
        if caller.visible is not None:
            answer["notes"].append(f"computed with only the fields {caller.name} sees; the others count as unknown")
        return answer

    @server.tool(annotations=READ)
    async def diff_config(ctx: Context, proposed_yaml: str, targets: list[str] | None = None) -> CallToolResult:
        """What replacing the running config with this YAML would do to everyone's access, per target:
        accounts created, disabled, deleted, groups granted and revoked, with the people and policies
        responsible, and the proposed config's tests (`provisioner diff --json`). Changes nothing."""
        return await answers.answer(
            ctx,
            "diff_config",
            {"proposed_yaml": proposed_yaml, "targets": targets},
            lambda c: diffed(c, proposed_yaml, targets),
            lambda d: f"{plural(len(d['changes']), 'change')} for {plural(d['people_affected'], 'person', 'people')}",
        )

    @server.tool(annotations=READ)
    async def status(ctx: Context) -> CallToolResult:
        """Sources, halts, unapplied events, failures, quarantine, engines (`provisioner status`)."""
        return await answers.answer(
            ctx,
            "status",
            {},
            lambda _: views.status(config, store),
            lambda d: f"{plural(len(d['halted']), 'halted source')}, {d['dead']} dead, {d['retrying']} retrying",
            about=lambda: {f.worker_id for f in store.failures.all()},  # each app's latest error is someone's
        )

    @server.tool(annotations=READ)
    async def list_failures(ctx: Context, worker: str | None = None, target: str | None = None) -> CallToolResult:
        """Failed writes, retrying or dead, with what a leaver still holds (`provisioner failures`)."""
        return await answers.answer(
            ctx,
            "list_failures",
            {"worker": worker, "target": target},
            lambda _: views.failures(store, worker, target),
            _count("failure"),
        )

    @server.tool(annotations=READ)
    async def list_quarantine(ctx: Context, source: str | None = None) -> CallToolResult:
        """Records the latest poll held back as bad input, with the reason (`provisioner quarantine`)."""
        return await answers.answer(
            ctx,
            "list_quarantine",
            {"source": source},
            lambda _: views.quarantine(config, store, source),
            _count("record"),
        )

    @server.tool(annotations=READ)
    async def provisioning_log(
        ctx: Context,
        worker: str | None = None,
        target: str | None = None,
        result: str | None = None,
        since: str | None = None,
        limit: int = 100,
    ) -> CallToolResult:
        """The provisioning log, newest last (`provisioner log`); `since` is an ISO time or an age (2h, 7d)."""

        def entries(_: Caller) -> Any:
            if result is not None and result not in RESULT_TONE:
                raise ValueError(f"result is one of {', '.join(RESULT_TONE)}")
            when = moment_or_age(since) if since else None
            return views.log_entries(store, worker, target, result, when, limit)

        return await answers.answer(
            ctx,
            "provisioning_log",
            {"worker": worker, "target": target, "result": result, "since": since, "limit": limit},
            entries,
            _count("entry", "entries"),
        )

    def latest(_: Caller) -> dict[str, Any]:
        report = views.reconcile_latest(store)
        if report is None:
            raise LookupError("no reconciliation has run yet")
        return report

    @server.tool(annotations=READ)
    async def latest_reconcile(ctx: Context) -> CallToolResult:
        """The last reconciliation's report: counts per target and situation, what needs attention."""
        return await answers.answer(ctx, "latest_reconcile", {}, latest, lambda d: f"reconciled at {d['at']}")

    @server.tool(annotations=READ)
    async def leavers_with_access(ctx: Context) -> CallToolResult:
        """People who left (or moved) but still hold access, and people whose record cannot be read
        while they hold accounts: the worst failures, as `provisioner status` counts them."""
        return await answers.answer(
            ctx,
            "leavers_with_access",
            {},
            lambda _: {
                "access_not_removed": store.access.not_removed(),
                "may_keep_access": store.access.unreadable_holders(),
            },
            lambda d: f"{plural(len(d['access_not_removed']), 'account')} still held after a removal failed",
        )


def request_tools(server: MCPServer, parts: Parts, answers: Answers) -> None:
    config, store = parts.config, parts.store

    @server.tool(annotations=ASK)
    async def request_provision_now(ctx: Context, worker_id: str, reason: str | None = None) -> CallToolResult:
        """Ask that this person be re-planned now. A person approves it; the answer names who."""
        return await answers.answer(
            ctx,
            "request_provision_now",
            {"worker_id": worker_id, "reason": reason},
            lambda c: agent_requests.request_provision_now(store, config, worker_id, c.name, reason),
            _receipt,
        )

    @server.tool(annotations=ASK)
    async def request_retry(
        ctx: Context, worker: str | None = None, target: str | None = None, reason: str | None = None
    ) -> CallToolResult:
        """Ask that failures of one person, one target, or both be retried. A person approves it."""
        return await answers.answer(
            ctx,
            "request_retry",
            {"worker": worker, "target": target, "reason": reason},
            lambda c: agent_requests.request_retry(store, config, c.name, worker, target, reason),
            _receipt,
        )

    @server.tool(annotations=ASK)
    async def request_access(
        ctx: Context, worker_id: str, target: str, groups: list[str] | None = None, reason: str | None = None
    ) -> CallToolResult:
        """Ask that this person get an account (and these groups) in one target. A person approves it."""
        return await answers.answer(
            ctx,
            "request_access",
            {"worker_id": worker_id, "target": target, "groups": groups, "reason": reason},
            lambda c: agent_requests.request_access(store, config, worker_id, target, c.name, groups, reason),
            _receipt,
        )

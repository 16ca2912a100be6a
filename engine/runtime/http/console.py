"""The web console at `/`: server-rendered pages over the same read models as the API.

No JavaScript build and nothing fetched from elsewhere: templates and one stylesheet ship in the
package. Every POST carries a CSRF token bound to the session; a resume asks for a confirmation
on a page of its own, so it takes two deliberate steps.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from provisioner.engine.contracts.protocols import SourceError
from provisioner.engine.contracts.records import RESULT_TONE
from provisioner.engine.runtime import approvals as approving
from provisioner.engine.runtime import operations, views
from provisioner.engine.runtime.bodies import FORM_BODY, read_bounded
from provisioner.engine.runtime.http.auth import NO_TOKEN, SESSION_COOKIE, SESSION_HOURS, Auth
from provisioner.engine.runtime.protocol import Served
from provisioner.reconcile.report import UNREAD

Handler = Callable[[Request], Awaitable[Response]]


def iso(moment: Any) -> str:
    """ISO 8601 with the zone, to the second; '' for nothing."""
    if not moment:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    stamped = views.utc(moment)
    return stamped.isoformat(timespec="seconds") if stamped else ""


def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("provisioner.engine.runtime.http", "templates"), autoescape=select_autoescape()
    )
    env.filters["iso"] = iso
    env.filters["tone"] = lambda result: RESULT_TONE.get(result, "")
    env.globals["results"] = list(RESULT_TONE)
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.globals["unread_why"] = UNREAD  # the reconcile report's own words, in the CLI and HTML report too
    return env


async def form(request: Request) -> dict[str, str]:
    # urlencoded only (what the pages send); parsed here so no multipart parser is needed. Kept on
    # the request: the CSRF check reads it first, and a body can be read only once.
    kept = getattr(request.state, "form", None)
    if kept is not None:
        return dict(kept)
    try:
        body = (await read_bounded(request, FORM_BODY)).decode("utf-8", "replace")
    except ClientDisconnect:  # the browser went away: a 400 nobody reads, and no traceback
        raise HTTPException(400, "the request ended early") from None
    request.state.form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
    return dict(request.state.form)


def console_routes(served: Served, auth: Auth) -> list[Route]:
    env = templates()
    config, store = served.config, served.store
    stylesheet = (files("provisioner.engine.runtime.http") / "static" / "console.css").read_text()

    def render(request: Request, name: str, session: str, code: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(name).render(
            csrf=auth.csrf_token(session), path=request.url.path, notice=request.query_params.get("notice"), **context
        )
        return HTMLResponse(html, status_code=code)

    def page(handler: Callable[[Request, str], Awaitable[Response]], operator: bool = True) -> Handler:
        """A page for a logged-in person (an operator, unless `operator` is false: the approvals
        queue); POSTs must also carry the session's CSRF token."""

        async def guarded(request: Request) -> Response:
            if not auth.enabled:
                return PlainTextResponse(NO_TOKEN, status_code=403)
            session = auth.session(request)
            if session is None:
                if request.method != "GET":
                    return PlainTextResponse("log in first", status_code=403)
                return RedirectResponse(f"/login?{urlencode({'next': request.url.path})}", status_code=303)
            if request.method == "POST" and not auth.csrf_ok(session, (await form(request)).get("csrf", "")):
                return PlainTextResponse("the form's CSRF token is missing or wrong; reload the page", status_code=403)
            principal = auth.session_principal(session)
            if operator and (principal is None or not principal.operator):
                if request.method == "GET" and request.url.path == "/":
                    return RedirectResponse("/approvals", status_code=303)  # an approver's home
                return render(request, "missing.html", session, code=403, message="your login may use Approvals only")
            return await handler(request, session)

        return guarded

    def back(path: str, notice: str) -> RedirectResponse:
        return RedirectResponse(f"{path}?{urlencode({'notice': notice})}", status_code=303)

    async def login(request: Request) -> Response:
        if not auth.enabled:
            return PlainTextResponse(NO_TOKEN, status_code=403)
        target = request.query_params.get("next", "/")
        target = target if target.startswith("/") and not target.startswith("//") else "/"
        error = None
        if request.method == "POST":
            fields = await form(request)
            principal = auth.principal(fields.get("token", ""))
            if principal is not None and principal.agent_only:
                error = f"{principal.shown} is an agent's token: it may use /mcp only, not the console."
            elif principal is not None:
                response = RedirectResponse(target, status_code=303)
                response.set_cookie(
                    SESSION_COOKIE,
                    auth.new_session(request.client.host if request.client else "", principal),
                    max_age=SESSION_HOURS * 3600,
                    httponly=True,
                    samesite="strict",
                    secure=request.url.scheme == "https",
                )
                return response
            else:
                error = "That token is not one configured in api.token or api.tokens."
        html = env.get_template("login.html").render(next=target, error=error, path="/login")
        return HTMLResponse(html, status_code=401 if error else 200)

    async def logout(request: Request, session: str) -> Response:
        auth.end_session(session)  # the cookie stops working everywhere, not just in this browser
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    async def overview(request: Request, session: str) -> Response:
        status, target_rows = await run_in_threadpool(
            lambda: (views.status(config, store), views.targets(config, store))
        )
        return render(request, "overview.html", session, status=status, targets=target_rows, now=views.now_iso())

    async def workers(request: Request, session: str) -> Response:
        q = request.query_params.get("q", "")
        found = await run_in_threadpool(views.workers, store, q, 100)
        return render(request, "workers.html", session, q=q, workers=found)

    async def worker(request: Request, session: str) -> Response:
        worker_id = request.path_params["worker_id"]
        try:
            detail = await run_in_threadpool(views.worker_detail, served.parts, worker_id)
        except LookupError as exc:
            return render(request, "missing.html", session, code=404, message=str(exc))
        except ValueError as exc:  # a policy that cannot be evaluated for this person
            return render(request, "missing.html", session, code=422, message=str(exc))
        return render(request, "worker.html", session, w=detail)

    async def provision(request: Request, session: str) -> Response:
        worker_id = request.path_params["worker_id"]
        try:
            event_id = await run_in_threadpool(operations.provision_now, store, worker_id)
        except LookupError as exc:
            return render(request, "missing.html", session, code=404, message=str(exc))
        served.wake()
        return back(f"/workers/{quote(worker_id, safe='')}", f"queued: event {event_id}")

    async def log(request: Request, session: str) -> Response:
        p = request.query_params
        filters = {k: p.get(k) or None for k in ("worker", "target", "result")}
        entries = await run_in_threadpool(
            lambda: views.log_entries(store, filters["worker"], filters["target"], filters["result"], limit=200)
        )
        return render(request, "log.html", session, entries=entries, filters=filters, targets=config.targets)

    async def failures(request: Request, session: str) -> Response:
        rows = await run_in_threadpool(views.failures, store)
        return render(request, "failures.html", session, failures=rows)

    async def retry(request: Request, session: str) -> Response:
        fields = await form(request)
        try:
            n = await run_in_threadpool(
                operations.retry, store, fields.get("worker") or None, fields.get("target") or None, "all" in fields
            )
        except ValueError as exc:
            return back("/failures", str(exc))
        served.wake()
        return back("/failures", f"{n} queued for another attempt")

    async def quarantine(request: Request, session: str) -> Response:
        rows = await run_in_threadpool(views.quarantine, served.config, store)
        return render(request, "quarantine.html", session, rows=rows)

    async def reconcile(request: Request, session: str) -> Response:
        report = await run_in_threadpool(views.reconcile_latest, store)
        return render(request, "reconcile.html", session, report=report)

    async def target(request: Request, session: str) -> Response:
        name = request.path_params["name"]
        found = await run_in_threadpool(
            lambda: next((t for t in views.targets(config, store) if t.target == name), None)
        )
        if found is None:
            return render(request, "missing.html", session, code=404, message="no such target")
        return render(request, "target.html", session, t=found)

    def source_view(name: str) -> views.SourceView | None:
        return next((s for s in views.sources(config, store) if s.source == name), None)

    async def source(request: Request, session: str) -> Response:
        found = await run_in_threadpool(source_view, request.path_params["name"])
        if found is None:
            return render(request, "missing.html", session, code=404, message="no such source")
        confirm = request.url.path.endswith("/resume")
        return render(request, "source.html", session, s=found, confirm=confirm)

    async def resume(request: Request, session: str) -> Response:
        name = request.path_params["name"]
        try:
            resumed = await run_in_threadpool(operations.resume, config, store, name)
        except LookupError as exc:
            return render(request, "missing.html", session, code=404, message=str(exc))
        return back(f"/sources/{name}", "resumed: the next poll applies its deprovisions" if resumed else "not halted")

    async def poll(request: Request, session: str) -> Response:
        name = request.path_params["name"]
        if name not in served.parts.sources:
            return render(request, "missing.html", session, code=404, message="no such source")
        try:
            diff = await served.poll(name)
        except SourceError as exc:
            return back(f"/sources/{name}", f"the poll failed: {exc}")
        return back(f"/sources/{name}", f"polled: {diff.seen} read, {diff.event_count} changes")

    async def approvals(request: Request, session: str) -> Response:
        state = request.query_params.get("state") or "pending"
        try:
            rows = await run_in_threadpool(approving.listing, store, state)
        except ValueError as exc:
            return render(request, "missing.html", session, code=400, message=str(exc))
        principal = auth.session_principal(session)
        return render(request, "approvals.html", session, rows=rows, state=state, principal=principal)

    async def decide(request: Request, session: str) -> Response:
        request_id, verdict = request.path_params["request_id"], request.path_params["verdict"]
        if verdict not in ("approve", "deny"):
            return render(request, "missing.html", session, code=404, message="approve or deny")
        principal = auth.session_principal(session)
        if principal is None or principal.approver is None:
            return back("/approvals", approving.SHARED_TOKEN_CANNOT)
        reason = (await form(request)).get("reason") or None
        try:
            decided = await run_in_threadpool(
                approving.decide, store, request_id, principal.approver, verdict == "approve", reason
            )
        except (LookupError, approving.Refused, approving.NotDecidable) as exc:
            return back("/approvals", f"not decided: {exc}")
        served.wake()
        return back("/approvals", f"{decided.id} {decided.state.value}: {decided.asks}")

    async def css(request: Request) -> Response:
        return Response(stylesheet, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    return [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", page(logout, operator=False), methods=["POST"]),  # any login may end itself
        Route("/static/console.css", css),
        Route("/", page(overview)),
        Route("/workers", page(workers)),
        Route("/workers/{worker_id}", page(worker)),
        Route("/workers/{worker_id}/provision", page(provision), methods=["POST"]),
        Route("/log", page(log)),
        Route("/failures", page(failures)),
        Route("/failures/retry", page(retry), methods=["POST"]),
        Route("/quarantine", page(quarantine)),
        Route("/reconcile", page(reconcile)),
        Route("/approvals", page(approvals, operator=False)),
        Route("/approvals/{request_id}/{verdict:str}", page(decide, operator=False), methods=["POST"]),
        Route("/targets/{name}", page(target)),
        Route("/sources/{name}", page(source)),
        Route("/sources/{name}/resume", page(source)),
        Route("/sources/{name}/resume", page(resume), methods=["POST"]),
        Route("/sources/{name}/poll", page(poll), methods=["POST"]),
    ]

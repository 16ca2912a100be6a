"""`/api/v1/identities`: the records joined to one person, and a person's decision to link two
records or keep one apart (as `provisioner identity`; docs/identity.md)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from provisioner.engine.runtime.protocol import Served
from provisioner.engine.runtime.usecases.identity import IdentityRules
from provisioner.engine.runtime.usecases.identity_manual import Decision, link, unlink


class LinkRequest(BaseModel):
    person: str  # a worker id of the person to join
    record: str  # the worker id that joins it


class UnlinkRequest(BaseModel):
    record: str


class Joined(BaseModel):
    worker_id: str
    person_id: str
    why: str
    manual: bool


class Decided(BaseModel):
    person_id: str
    said: list[str]
    events: list[str]  # ids of the events queued: the engine re-plans the person from them


def identity_routes(served: Served) -> APIRouter:
    router = APIRouter(prefix="/identities", tags=["identities"])

    def decided(decide: Callable[[], Decision]) -> Decided:
        try:
            decision = decide()
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        if decision.events:
            served.wake()
        return Decided(person_id=decision.person_id, said=decision.said, events=decision.events)

    @router.get("", response_model=list[Joined])
    def identities() -> list[Joined]:
        """Records joined to another, by person: the anchor's row and each record's reason."""
        return [Joined(**m.__dict__) for m in served.store.identities.all()]

    @router.post("/link", response_model=Decided)
    def link_records(body: LinkRequest) -> Decided:
        """`record` (and the records joined to it) becomes part of `person`'s person: one set of accounts."""
        rules = IdentityRules.of(served.config)
        return decided(lambda: link(served.store, rules, body.person, body.record))

    @router.post("/unlink", response_model=Decided)
    def unlink_record(body: UnlinkRequest) -> Decided:
        """`record` becomes a person of its own again, with accounts of its own."""
        rules = IdentityRules.of(served.config)
        return decided(lambda: unlink(served.store, rules, body.record))

    return router

"""Erasure of a person (GDPR Art. 17): ``/api/v1/erasures`` (admin). The request is
recorded in the erasures topic and applied by the ingest worker (see
``pipeline.erasure``); ``POST`` answers once it is applied (``202`` after the app's
``apply_wait_s`` without it), so what follows the answer
(a search, an export, the page) shows no clear value of the person."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from query_api.auth import Admin
from query_api.routes.deps import BrokerUp, Erasures
from schemas.erasure import ErasureIn, ErasureRecord

router = APIRouter(prefix="/api/v1", tags=["privacy"])
ErasureId = Annotated[str, Path(pattern=r"^er_[0-9a-f]{16}$", description="The erasure's id.")]


@router.post(
    "/erasures",
    response_model=ErasureRecord,
    status_code=201,
    responses={
        200: {"description": "This person (and account) was erased before: that erasure."},
        202: {"description": "Recorded; not applied within a minute (see GET)."},
    },
)
async def erase(
    body: ErasureIn,
    admin: Admin,
    _broker: BrokerUp,
    erasures: Erasures,
    request: Request,
    response: Response,
) -> ErasureRecord:
    """Replaces the person's ids, e-mails, IP addresses and user agents by stable
    pseudonyms in every stored event of theirs (in ``account`` only, when given), in
    the destinations' dead letters, and in their events still to come; recorded as a
    ``privacy.user.erased`` event. Idempotent: asking again returns the same erasure."""
    record, new = await run_in_threadpool(erasures.request, body.user, body.account, admin.name)
    wait_s: float = request.app.state.apply_wait_s
    done = await run_in_threadpool(erasures.wait_applied, record.id, wait_s)
    record = done or record
    if record.state != "applied":
        response.status_code = 202
    elif not new:
        response.status_code = 200
    return record


@router.get("/erasures", response_model=list[ErasureRecord])
def list_erasures(_admin: Admin, erasures: Erasures) -> list[ErasureRecord]:
    """Every erasure, newest first (pseudonyms and keyed hashes only)."""
    return erasures.records()


@router.get("/erasures/{erasure_id}", response_model=ErasureRecord)
def get_erasure(erasure_id: ErasureId, _admin: Admin, erasures: Erasures) -> ErasureRecord:
    record = erasures.get(erasure_id)
    if record is None:
        raise HTTPException(
            404, {"parameter": "erasure_id", "in": "path", "message": f"no erasure {erasure_id}"}
        )
    return record

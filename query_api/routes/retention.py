"""How long each account's events are kept: ``/api/v1/retention`` (every account, admin)
and ``/api/v1/accounts/{account}/retention``. A change is written to the retention topic
and applied by the ingest worker to the log store's TTL, the rows already stored included;
``PUT`` answers once the store has it (``applied``), or ``202`` if it did not within the
app's ``apply_wait_s``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from infra.clickhouse.client import current_ttl
from pipeline.retention import RetentionLog
from query_api.auth import Admin, Viewer
from query_api.repository import LogRepository
from query_api.routes.deps import AppSettings, BrokerUp, Repo, Retention
from schemas.retention import AccountRetention, RetentionIn, ttl_expression

router = APIRouter(prefix="/api/v1", tags=["retention"])
AccountPath = Annotated[str, Path(min_length=1, max_length=256, description="The account id.")]


class AccountRetentionView(BaseModel):
    account: str
    days: int = Field(description="Days its events are kept.")
    own: bool = Field(description="Set for this account; false: the installation's default.")
    set_by: str | None = None
    set_at: datetime | None = None
    applied: bool | None = Field(
        None, description="PUT/DELETE only: whether the log store's TTL has it yet."
    )


class RetentionOverview(BaseModel):
    default_days: int = Field(description="AUTHTRAIL_RETENTION_DAYS: accounts without their own.")
    accounts: list[AccountRetention]


def _view(account: str, record: AccountRetention | None, default_days: int) -> AccountRetentionView:
    if record is None:
        return AccountRetentionView(account=account, days=default_days, own=False)
    return AccountRetentionView(
        account=account, days=record.days, own=True, set_by=record.set_by, set_at=record.set_at
    )


@dataclass(frozen=True)
class RetentionChange:
    """What a change of retention needs to answer: the topic's view, the store to watch
    for the TTL, the default, and how long to wait for the ingest worker."""

    retention: RetentionLog
    repo: LogRepository
    default_days: int
    wait_s: float

    def _applied(self) -> bool:
        """Waits until the store's TTL is the one the topic asks for."""
        deadline = time.monotonic() + self.wait_s
        while True:
            wanted = ttl_expression(self.default_days, self.retention.account_days())
            with self.repo.borrowed() as client:
                if current_ttl(client, self.repo.location) == wanted:
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)

    async def answer(
        self, account: str, record: AccountRetention | None, response: Response
    ) -> AccountRetentionView:
        """The account's retention once the store has it (200), or as recorded (202)."""
        applied = await run_in_threadpool(self._applied)
        response.status_code = 200 if applied else 202
        return _view(account, record, self.default_days).model_copy(update={"applied": applied})


def retention_change(
    retention: Retention, repo: Repo, settings: AppSettings, request: Request
) -> RetentionChange:
    return RetentionChange(retention, repo, settings.retention_days, request.app.state.apply_wait_s)


Change = Annotated[RetentionChange, Depends(retention_change)]


@router.get("/retention", response_model=RetentionOverview)
def overview(_admin: Admin, retention: Retention, settings: AppSettings) -> RetentionOverview:
    """The default and every account that has its own retention."""
    return RetentionOverview(default_days=settings.retention_days, accounts=retention.records())


@router.get("/accounts/{account}/retention", response_model=AccountRetentionView)
def get_retention(
    account: AccountPath, principal: Viewer, retention: Retention, settings: AppSettings
) -> AccountRetentionView:
    """How long ``account``'s events are kept (a scoped token: its own account only)."""
    if principal.account is not None and principal.account != account:
        raise HTTPException(
            403, {"parameter": "account", "in": "path", "message": "this token sees one account"}
        )
    return _view(account, retention.get(account), settings.retention_days)


@router.put(
    "/accounts/{account}/retention",
    response_model=AccountRetentionView,
    responses={202: {"description": "Recorded; the log store did not have it yet."}},
)
async def set_retention(
    account: AccountPath,
    body: RetentionIn,
    admin: Admin,
    _broker: BrokerUp,
    change: Change,
    response: Response,
) -> AccountRetentionView:
    """Keeps ``account``'s events ``days`` days: applied to the events already stored
    (those past it are deleted) and to those to come."""
    record = await run_in_threadpool(change.retention.set, account, body.days, admin.name)
    return await change.answer(account, record, response)


@router.delete("/accounts/{account}/retention", response_model=AccountRetentionView)
async def unset_retention(
    account: AccountPath,
    _admin: Admin,
    _broker: BrokerUp,
    change: Change,
    response: Response,
) -> AccountRetentionView:
    """Returns ``account`` to the default retention."""
    await run_in_threadpool(change.retention.unset, account)
    return await change.answer(account, None, response)

"""Saved views of the Logs page: ``/api/v1/views``. Any caller saves views of its own,
private or shared; an account-scoped caller's views stay inside its account, and it sees
only views that do."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response

from query_api.auth import Principal, Viewer
from query_api.filters import view_filter
from query_api.routes.deps import BrokerUp, Views
from query_api.saved_views import removable, visible
from schemas.views import SavedView, ViewIn

router = APIRouter(prefix="/api/v1", tags=["views"])
ViewId = Annotated[str, Path(pattern=r"^vw_[0-9a-f]{12}$", description="The view's id.")]


def _writable(principal: Principal) -> None:
    if principal.read_only:
        raise HTTPException(
            403, {"parameter": "role", "in": "header", "message": "this token only reads"}
        )


def _find(views: Views, view_id: str, principal: Principal) -> SavedView:
    """The view, if this caller may see it (404 otherwise: an invisible view's existence
    is not told)."""
    view = views.get(view_id)
    if view is None or not visible(view, principal):
        raise HTTPException(
            404, {"parameter": "view_id", "in": "path", "message": f"no view {view_id}"}
        )
    return view


@router.get("/views", response_model=list[SavedView])
def list_views(principal: Viewer, views: Views) -> list[SavedView]:
    """The caller's own views and the shared ones it may see, by name."""
    return views.visible_to(principal)


@router.post("/views", response_model=SavedView, status_code=201)
def save_view(body: ViewIn, principal: Viewer, _broker: BrokerUp, views: Views) -> SavedView:
    """Saves the filter and sort as a view owned by the caller. The filter is checked as
    ``GET /logs`` checks its parameters (a 400 names ``filter.<parameter>``); a scoped
    caller's view stays inside its account (asking for another is a 403)."""
    _writable(principal)
    checked = view_filter(body.filter, principal.account)
    account = principal.account or (checked.accounts[0] if len(checked.accounts) == 1 else None)
    return views.save(body, principal, account)


@router.get("/views/{view_id}", response_model=SavedView)
def get_view(view_id: ViewId, principal: Viewer, views: Views) -> SavedView:
    return _find(views, view_id, principal)


@router.delete("/views/{view_id}", status_code=204)
def delete_view(view_id: ViewId, principal: Viewer, _broker: BrokerUp, views: Views) -> Response:
    """Removes a view: its owner, or an admin who sees it (403 for anyone else)."""
    _writable(principal)
    view = _find(views, view_id, principal)
    if not removable(view, principal):
        raise HTTPException(
            403,
            {"parameter": "view_id", "in": "path", "message": "only its owner or an admin"},
        )
    views.remove(view_id)
    return Response(status_code=204)

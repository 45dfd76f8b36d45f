"""Saved views: the compacted ``authtrail.views`` topic, written by the API and read into
memory by every API process (a view saved through one is listed by all), and who may see
and remove which."""

from __future__ import annotations

import logging

from pydantic import ValidationError

from infra.kafka.compacted import CompactedView, ViewedTopic, publish
from query_api.auth import Principal
from schemas.events import utc_now_ms
from schemas.settings import Settings
from schemas.views import SavedView, ViewIn, new_view_id

log = logging.getLogger(__name__)


def visible(view: SavedView, principal: Principal) -> bool:
    """Whether ``principal`` may see ``view``: its own views and the shared ones; an
    account-scoped caller only those that stay inside its account."""
    if principal.account is not None and view.account != principal.account:
        return False
    return view.shared or view.owner == principal.token_id


def removable(view: SavedView, principal: Principal) -> bool:
    """The owner removes a view, and so does an admin who sees it."""
    return view.owner == principal.token_id or (
        principal.role == "admin" and visible(view, principal)
    )


class ViewStore(ViewedTopic[SavedView]):
    """Reads and writes saved views."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

        def decode(key: str, value: bytes) -> SavedView | None:
            try:
                return SavedView.model_validate_json(value)
            except ValidationError as exc:
                log.error("saved view %s cannot be read: %s", key, exc)
                return None

        self._view: CompactedView[SavedView] = CompactedView(
            settings.kafka_client_config(), settings.topics.views, decode
        )

    def visible_to(self, principal: Principal) -> list[SavedView]:
        views = [v for v in self._view.items().values() if visible(v, principal)]
        return sorted(views, key=lambda v: (v.name.lower(), v.id))

    def save(self, view: ViewIn, principal: Principal, account: str | None) -> SavedView:
        """Stores ``view`` as ``principal``'s, inside ``account`` (see ``SavedView``);
        waits for the broker's acknowledgement and for this process to read it back."""
        saved = SavedView(
            **view.model_dump(),
            id=new_view_id(),
            owner=principal.token_id,
            owner_name=principal.name,
            account=account,
            created_at=utc_now_ms(),
        )
        self._publish(saved.id, saved.model_dump_json(by_alias=True).encode())
        return saved

    def remove(self, view_id: str) -> None:
        self._publish(view_id, None)

    def _publish(self, key: str, value: bytes | None) -> None:
        publish(self._settings.kafka_client_config(), self._settings.topics.views, key, value)
        self._view.catch_up()

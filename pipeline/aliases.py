"""The accepted alternative shapes of a raw event and how they map onto the v1 contract
(the table is in ``pipeline.normalize``'s docstring and the README). When both spellings
are present, the v1 field wins."""

from __future__ import annotations

from typing import Any

# v1 field: its alternative spellings, in the order they are tried.
ALIASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("occurred_at", ("timestamp", "ts")),
    ("ip", ("ip_address", "client_ip")),
    ("user_agent", ("userAgent",)),
    ("trace_id", ("traceId",)),
)


def canonical(obj: dict[str, Any]) -> dict[str, Any]:
    """Maps the accepted alternative shapes onto v1 field names (a new dict)."""
    out = dict(obj)
    for target, aliases in ALIASES:
        for alias in aliases:
            if alias in out:
                value = out.pop(alias)
                if out.get(target) is None:
                    out[target] = value
    flat_account = {"id": out.pop("account_id", None), "name": out.pop("account_name", None)}
    if out.get("account") is None and any(v is not None for v in flat_account.values()):
        out["account"] = {k: v for k, v in flat_account.items() if v is not None}
    elif isinstance(out.get("account"), str):
        out["account"] = {"id": out["account"]}
    flat_actor = {"id": out.pop("user_id", None), "email": out.pop("user_email", None)}
    if out.get("actor") is None and any(v is not None for v in flat_actor.values()):
        out["actor"] = {k: v for k, v in flat_actor.items() if v is not None}
    elif isinstance(out.get("actor"), str):
        actor = out["actor"]
        out["actor"] = {"email": actor} if "@" in actor else {"id": actor}
    return out

"""Realistic synthetic auth traffic for the demo and for benchmarks.

Several accounts with their users, AI agents and services; anonymous actors (failed logins
for unknown users, anonymous OIDC starts); real-looking user agents and public IPs from
several countries; successes and failures in plausible ratios; OIDC flows whose events
share a trace id; a share of events in the alternative flat shape the pipeline accepts."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.events import rfc3339_ms

USER_AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/129.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.6778.39 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.0 Safari/605.1.15",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
    "Go-http-client/2.0",
    "curl/8.10.1",
)

# Public address blocks by country, for realistic geo enrichment.
IP_BLOCKS = (
    ("99.81.{}.{}", "IE"),
    ("34.240.{}.{}", "IE"),
    ("81.2.{}.{}", "GB"),
    ("185.60.{}.{}", "IE"),
    ("8.8.{}.{}", "US"),
    ("104.16.{}.{}", "US"),
    ("52.58.{}.{}", "DE"),
    ("151.101.{}.{}", "US"),
    ("2a00:1450:4001:{:x}::{:x}", "DE"),
    ("2001:4860:4860::{:x}{:x}", "US"),
    ("200.147.{}.{}", "BR"),
    ("133.242.{}.{}", "JP"),
)

ACCOUNTS = (
    ("acc_acme", "Acme", "acme.io"),
    ("acc_globex", "Globex", "globex.com"),
    ("acc_initech", "Initech", "initech.net"),
    ("acc_umbrella", "Umbrella", "umbrella.co"),
    ("acc_stark", "Stark Industries", "stark.example"),
)
FIRST = ("ana", "ben", "chen", "dara", "eli", "fatima", "gus", "hana", "ivan", "jo", "kai", "lea")
LAST = ("silva", "ng", "okafor", "muller", "rossi", "tanaka", "kowalski", "haddad")
LOGIN_FAILURE_REASONS = ("invalid_password", "invalid_password", "mfa_required", "account_locked")
TOKEN_FAILURE_REASONS = ("invalid_grant", "invalid_client", "expired_code", "pkce_mismatch")


@dataclass(frozen=True, slots=True)
class Actor:
    id: str
    email: str | None
    type: str
    ip: str
    user_agent: str


class DemoTraffic:
    """An endless, seeded stream of raw events (JSON bytes) shaped like an identity
    platform's. ``next_batch`` returns the events of one or more whole flows."""

    def __init__(
        self,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        users_per_account: int | None = None,
        accounts: int | None = None,
    ) -> None:
        """``users_per_account``: each account's users (each with an email and an address
        of their own); by default 6 to 10, a demo's size. Benchmarks of anything that
        depends on how many distinct users and addresses there are (the PII rules) ask
        for tens of thousands, as an identity platform's customers have.

        ``accounts``: how many accounts (None: the demo's five). More accounts are
        numbered (``acc_0007``, "Account 7", ``account7.example``) and busy as a
        platform's customers are: account ``i`` (from 1) is picked with weight ``1/i``,
        a few large ones and a long tail. The default stream is unchanged by this."""
        self.rng = random.Random(seed)
        self.clock = clock
        named = (
            ACCOUNTS
            if accounts is None
            else tuple(
                (f"acc_{i:04d}", f"Account {i}", f"account{i}.example")
                for i in range(1, accounts + 1)
            )
        )
        self.accounts = [
            (acc_id, name, self._members(acc_id, domain, users_per_account))
            for acc_id, name, domain in named
        ]
        # Cumulative weights of the accounts (None: picked uniformly, as the demo always was).
        self._weights: list[float] | None = None
        if accounts is not None:
            total = 0.0
            self._weights = []
            for i in range(1, accounts + 1):
                total += 1 / i
                self._weights.append(total)

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _ip(self) -> str:
        pattern, _country = self.rng.choice(IP_BLOCKS)
        return pattern.format(self.rng.randint(1, 250), self.rng.randint(1, 250))

    def _members(self, acc_id: str, domain: str, users: int | None) -> list[Actor]:
        """The account's users, then its agent, then its service (last)."""
        members = []
        for i in range(self.rng.randint(6, 10) if users is None else users):
            first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
            uid = f"usr_{self.rng.getrandbits(40):010x}"
            # Many users share a name: a number keeps their emails apart.
            email = f"{first}.{last}@{domain}" if users is None else f"{first}.{last}.{i}@{domain}"
            members.append(
                Actor(
                    uid,
                    email,
                    "user",
                    self._ip(),
                    self.rng.choice(USER_AGENTS[:7]),
                )
            )
        suffix = acc_id.removeprefix("acc_")
        members.append(
            Actor(
                f"agent-{suffix}-{self.rng.randint(1, 99)}",
                None,
                "agent",
                self._ip(),
                self.rng.choice(USER_AGENTS[7:]),
            )
        )
        members.append(Actor(f"svc-{suffix}-scim", None, "service", self._ip(), "okhttp/4.12.0"))
        return members

    def _event(
        self,
        key: str,
        account: tuple[str, str] | None,
        actor: Actor | None,
        *,
        trace_id: str | None = None,
        outcome: str | None = None,
        reason: str | None = None,
        attributes: dict[str, Any] | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> bytes:
        now = self.clock()
        ip = ip or (actor.ip if actor else self._ip())
        ua = user_agent or (actor.user_agent if actor else self.rng.choice(USER_AGENTS))
        if self.rng.random() < 0.1:
            # The flat shape some services emit; the pipeline normalizes it.
            flat: dict[str, Any] = {
                "event_id": self._uuid(),
                "event_key": key,
                "timestamp": int(now * 1000),
                "ip_address": ip,
                "userAgent": ua,
            }
            if account:
                flat["account_id"], flat["account_name"] = account
            if actor:
                flat["user_id"] = actor.id
                if actor.email:
                    flat["user_email"] = actor.email
            if trace_id:
                flat["traceId"] = trace_id
            if outcome:
                flat["outcome"] = outcome
            if reason:
                flat["reason"] = reason
            return orjson.dumps(flat)
        event: dict[str, Any] = {
            "event_id": self._uuid(),
            "event_key": key,
            "occurred_at": rfc3339_ms(datetime.fromtimestamp(now, UTC)),
            "ip": ip,
            "user_agent": ua,
        }
        if account:
            event["account"] = {"id": account[0], "name": account[1]}
        if actor:
            event["actor"] = {
                k: v
                for k, v in (("id", actor.id), ("email", actor.email), ("type", actor.type))
                if v
            }
        if trace_id:
            event["trace_id"] = trace_id
        if outcome:
            event["outcome"] = outcome
        if reason:
            event["reason"] = reason
        if attributes:
            event["attributes"] = attributes
        return orjson.dumps(event)

    def next_batch(self) -> list[bytes]:
        rng = self.rng
        if self._weights is None:
            acc_id, acc_name, members = rng.choice(self.accounts)
        else:
            (acc_id, acc_name, members) = rng.choices(self.accounts, cum_weights=self._weights)[0]
        account = (acc_id, acc_name)
        user = members[rng.randrange(len(members) - 2)]  # one of the users (_members)
        roll = rng.random()
        if roll < 0.40:
            return self._login(account, user)
        if roll < 0.65:
            return self._oidc(account, rng.choice(members))
        if roll < 0.75:
            return [
                self._event(
                    "sso.tenant.completed",
                    account,
                    user,
                    attributes={"idp": rng.choice(["okta", "entra", "google"])},
                )
            ]
        if roll < 0.83:
            return [
                self._event(
                    "refresh_token.exchange.completed",
                    account,
                    user,
                    attributes={"client_id": f"app-{rng.randint(1, 9)}"},
                )
            ]
        if roll < 0.88:
            # Unknown users and platform-level probes: no account, no actor.
            return [
                self._event(
                    "login.failed",
                    None,
                    None,
                    reason="unknown_user",
                    ip=self._ip(),
                    user_agent=rng.choice(USER_AGENTS),
                )
            ]
        if roll < 0.92:
            return [self._event("logout.completed", account, user)]
        return [self._rare(account, members, user)]

    def _login(self, account: tuple[str, str], user: Actor) -> list[bytes]:
        rng = self.rng
        if rng.random() < 0.12:
            events = [
                self._event("login.failed", account, user, reason=rng.choice(LOGIN_FAILURE_REASONS))
            ]
            if rng.random() < 0.1:
                events.append(
                    self._event("user.locked", account, user, reason="too_many_failed_logins")
                )
            return events
        events = []
        if rng.random() < 0.3:
            passed = rng.random() < 0.93
            events.append(
                self._event(
                    "mfa.challenge.passed" if passed else "mfa.challenge.failed",
                    account,
                    user,
                    attributes={"factor": rng.choice(["totp", "webauthn", "push"])},
                )
            )
            if not passed:
                return events
        events.append(
            self._event(
                "login.completed",
                account,
                user,
                attributes={"method": rng.choice(["password", "passkey", "sso"])},
            )
        )
        return events

    def _oidc(self, account: tuple[str, str], actor: Actor) -> list[bytes]:
        rng = self.rng
        trace_id = f"{rng.getrandbits(128):032x}"
        client = {
            "client_id": f"{actor.id}" if actor.type == "agent" else f"app-{rng.randint(1, 9)}"
        }
        anonymous_start = rng.random() < 0.3
        events = [
            self._event(
                "oidc.flow.started",
                account,
                None if anonymous_start else actor,
                trace_id=trace_id,
                attributes=client,
                ip=actor.ip,
                user_agent=actor.user_agent,
            )
        ]
        if rng.random() < 0.9:
            events.append(
                self._event(
                    "oidc.token_exchange.succeeded",
                    account,
                    actor,
                    trace_id=trace_id,
                    attributes=client,
                )
            )
        else:
            events.append(
                self._event(
                    "oidc.token_exchange.failed",
                    account,
                    actor,
                    trace_id=trace_id,
                    attributes=client,
                    reason=rng.choice(TOKEN_FAILURE_REASONS),
                )
            )
        return events

    def _rare(self, account: tuple[str, str], members: list[Actor], user: Actor) -> bytes:
        rng = self.rng
        service = members[-1]
        choice = rng.randrange(6)
        if choice == 0:
            return self._event("password.reset.requested", account, user)
        if choice == 1:
            return self._event("password.reset.completed", account, user)
        if choice == 2:
            return self._event(
                "scim.user.provisioned", account, service, attributes={"target": user.email}
            )
        if choice == 3:
            return self._event(
                "scim.user.deprovisioned", account, service, attributes={"target": user.email}
            )
        if choice == 4:
            return self._event(
                "api_token.created",
                account,
                user,
                attributes={"token_name": f"ci-{rng.randint(1, 99)}"},
            )
        return self._event("api_token.revoked", account, user)

    def events(self) -> Iterator[bytes]:
        while True:
            yield from self.next_batch()


def run_demo(
    send: Callable[[bytes], None],
    rate: float,
    duration_s: float,
    should_stop: Callable[[], bool] = lambda: False,
    seed: int | None = None,
) -> int:
    """Sends demo events at ``rate`` events/s for ``duration_s`` seconds (0: until
    ``should_stop``). Returns how many were sent. Paced in 50 ms ticks."""
    traffic = DemoTraffic(seed)
    stream = traffic.events()
    sent = 0
    started = time.monotonic()
    while not should_stop():
        elapsed = time.monotonic() - started
        if duration_s and elapsed >= duration_s:
            break
        due = int(elapsed * rate) + 1
        while sent < due:
            send(next(stream))
            sent += 1
        time.sleep(0.05)
    return sent

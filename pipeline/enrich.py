"""Enrichment lookups: user-agent parsing and IP -> country, both offline and cached.

The parsers ship inside their packages (ua-parser's bundled regexes with its Rust
backend; geoip2fast's bundled country database), so nothing is fetched at run time."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import ua_parser
from geoip2fast import GeoIP2Fast


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    browser: str
    os: str
    device: str


_EMPTY_UA = UserAgentInfo("", "", "")


def _version(*parts: str | None) -> str:
    return ".".join(p for p in parts if p)


class Enricher:
    """Parses user agents and looks up countries. Both lookups are LRU-cached: auth traffic
    repeats the same few hundred user agents and a working set of client IPs.

    Not thread-safe for construction; lookups are safe to call from one thread at a time."""

    def __init__(self, cache_size: int = 50_000) -> None:
        self._geo = GeoIP2Fast(geoip2fast_data_file="geoip2fast-ipv6.dat.gz", verbose=False)
        self.user_agent = lru_cache(maxsize=cache_size)(self._parse_user_agent)
        self.country = lru_cache(maxsize=cache_size)(self._lookup_country)

    @staticmethod
    def _parse_user_agent(user_agent: str) -> UserAgentInfo:
        if not user_agent:
            return _EMPTY_UA
        result = ua_parser.parse(user_agent)
        browser = os_name = device = ""
        if result.user_agent is not None and result.user_agent.family != "Other":
            ua = result.user_agent
            browser = f"{ua.family} {ua.major}" if ua.major else ua.family
        if result.os is not None and result.os.family != "Other":
            version = _version(result.os.major, result.os.minor, result.os.patch)
            os_name = f"{result.os.family} {version}".strip()
        if result.device is not None and result.device.family != "Other":
            device = result.device.family
        return UserAgentInfo(browser, os_name, device)

    def _lookup_country(self, ip: str) -> str:
        """ISO 3166 alpha-2 code, or "" for private, reserved and unknown addresses."""
        if not ip:
            return ""
        result = self._geo.lookup(ip)
        code = str(getattr(result, "country_code", "") or "")
        if getattr(result, "is_private", False) or len(code) != 2 or not code.isalpha():
            return ""
        return code

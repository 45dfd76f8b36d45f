"""The destination platforms: one settings model per platform, validated strictly (site,
domain and region lists, ARN and URL formats), each registered once with ``@platform``.
Setting keys are the same everywhere (CLI ``--set key=value``, the API, the page's form)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

DATADOG_SITES = (
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "datadoghq.eu",
    "ap1.datadoghq.com",
    "ap2.datadoghq.com",
    "ddog-gov.com",
    "us2.ddog-gov.com",
)
CORALOGIX_DOMAINS = {
    "us1": "coralogix.us",
    "us2": "cx498.coralogix.com",
    "us3": "edge.us3.coralogix.com",
    "eu1": "coralogix.com",
    "eu2": "eu2.coralogix.com",
    "ap1": "coralogix.in",
    "ap2": "coralogixsg.com",
    "ap3": "ap3.coralogix.com",
}
_AWS_REGION = re.compile(
    r"^(us|eu|ap|sa|ca|me|af|il|mx)(-gov)?-(north|south|east|west|central|"
    r"northeast|southeast|northwest|southwest)-\d$"
)
_BUS_NAME = re.compile(r"^[A-Za-z0-9._\-/]{1,256}$")
_BUS_ARN = re.compile(r"^arn:aws(-[a-z]+)*:events:[a-z0-9-]+:\d{12}:event-bus/[A-Za-z0-9._\-/]+$")
_TAGS = re.compile(r"^[^,:\s]+:[^,\s]+(,[^,:\s]+:[^,\s]+)*$")
# Values may end up in HTTP headers (X-Sumo-*): no control characters, so no CR/LF.
_FIELDS = re.compile(r"^[A-Za-z0-9_]+=[^,=\x00-\x1f\x7f]+(,[A-Za-z0-9_]+=[^,=\x00-\x1f\x7f]+)*$")
_SUMO_URL = re.compile(r"^https://[A-Za-z0-9.-]+(:\d+)?/receiver/v1/http/[A-Za-z0-9_=+\-]+$")


def _url(value: str, *, https_only: bool = False) -> str:
    text = value.strip().rstrip("/")
    if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(:\d+)?(/[^\s]*)?", text):
        raise ValueError("must be an http(s) URL, e.g. https://host:8088")
    if https_only and not text.startswith("https://"):
        raise ValueError("must use https")
    return text


HttpUrlText = Annotated[str, AfterValidator(_url)]
# Free text that may reach a platform in a header (Sumo's X-Sumo-Category, -Name, -Host) or
# a body: control characters (CR/LF above all) are refused when the destination is saved.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _printable(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (line breaks, tabs)")
    return value


Text = Annotated[str, Field(min_length=1, max_length=256), AfterValidator(_printable)]


class PlatformSettings(BaseModel):
    """Base of every platform's settings. ``SECRETS`` names the fields never shown;
    ``ADDRESS`` the fields that decide where requests (and so the secrets) go: changing
    one requires every secret again (``updated_destination``)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    SECRETS: ClassVar[tuple[str, ...]] = ()
    ADDRESS: ClassVar[tuple[str, ...]] = ("endpoint",)
    endpoint: HttpUrlText | None = Field(
        None, description="Overrides the platform address (a proxy, a test receiver)."
    )


S = TypeVar("S", bound=PlatformSettings)


@dataclass(frozen=True, slots=True)
class PlatformSpec:
    """A destination platform as the API, the page and the CLI present it."""

    platform: str
    name: str
    description: str
    settings: type[PlatformSettings]


# Every platform, in the order the page shows them. A platform is registered once, with
# ``@platform(...)`` on its settings model; its sink is ``connectors/sinks/<platform>.py``.
PLATFORM_SPECS: dict[str, PlatformSpec] = {}


def platform(key: str, name: str, description: str) -> Callable[[type[S]], type[S]]:
    """Registers the decorated settings model as destination platform ``key``."""

    def register(model: type[S]) -> type[S]:
        if key in PLATFORM_SPECS:
            raise ValueError(f"platform {key} is registered twice")
        PLATFORM_SPECS[key] = PlatformSpec(key, name, description, model)
        return model

    return register


@platform(
    "datadog",
    "Datadog",
    "Auth events as Datadog logs: search, dashboards and monitors beside your services.",
)
class DatadogSettings(PlatformSettings):
    SECRETS = ("api_key",)
    ADDRESS = ("endpoint", "site")
    site: Literal[DATADOG_SITES] = Field(  # type: ignore[valid-type]
        "datadoghq.com", description="Your Datadog site (the host of your Datadog URL)."
    )
    api_key: SecretStr = Field(description="Datadog API key (Organization settings, API keys).")
    service: Text = Field("authtrail", description="The logs' service attribute.")
    source: Text = Field("authtrail", description="The logs' ddsource (selects the pipeline).")
    tags: Annotated[str, Field(max_length=2000)] = Field(
        "", description="Extra tags: key:value,key:value."
    )

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: str) -> str:
        if value and not _TAGS.fullmatch(value):
            raise ValueError("must be 'key:value,key:value'")
        return value

    @field_validator("api_key")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(r"[A-Za-z0-9]{16,64}", value.get_secret_value()):
            raise ValueError("must be 16-64 letters and digits")
        return value


@platform(
    "eventbridge",
    "Amazon EventBridge",
    "Auth events on an event bus: route them to Lambda, SQS, Step Functions or SIEMs.",
)
class EventBridgeSettings(PlatformSettings):
    SECRETS = ("secret_access_key",)
    ADDRESS = ("endpoint", "region")
    region: str = Field(description="AWS region, e.g. eu-west-1.")
    event_bus: Annotated[str, Field(min_length=1, max_length=1600)] = Field(
        "default", description="Bus name or ARN."
    )
    access_key_id: Annotated[str, Field(pattern=r"^[A-Z0-9]{16,128}$")] | None = Field(
        None, description="Leave both keys empty to use the default AWS credential chain."
    )
    secret_access_key: SecretStr | None = Field(None, description="Goes with the access key id.")
    source: Annotated[str, Field(min_length=1, max_length=256)] = Field(
        "authtrail", description="The events' Source (rules match on it)."
    )

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _AWS_REGION.fullmatch(value):
            raise ValueError("is not an AWS region name (e.g. eu-west-1)")
        return value

    @field_validator("event_bus")
    @classmethod
    def _bus(cls, value: str) -> str:
        if value.startswith("arn:"):
            if not _BUS_ARN.fullmatch(value):
                raise ValueError(
                    "is not an event bus ARN (arn:aws:events:<region>:<account>:event-bus/<name>)"
                )
        elif not _BUS_NAME.fullmatch(value):
            raise ValueError("is not an event bus name")
        return value

    @field_validator("source")
    @classmethod
    def _source(cls, value: str) -> str:
        if value.startswith("aws."):
            raise ValueError("must not start with 'aws.' (reserved by AWS)")
        return value

    @model_validator(mode="after")
    def _both_keys(self) -> EventBridgeSettings:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError(
                "access_key_id and secret_access_key go together (or neither: "
                "the default AWS credential chain)"
            )
        return self


@platform(
    "splunk",
    "Splunk",
    "Auth events into a Splunk index over HEC: correlate them in your SIEM.",
)
class SplunkSettings(PlatformSettings):
    SECRETS = ("token",)
    # Turning certificate checks off lets anyone on the path read the token.
    ADDRESS = ("endpoint", "url", "verify_tls")
    url: HttpUrlText = Field(description="HEC base URL, e.g. https://splunk:8088.")
    token: SecretStr = Field(description="HEC token.")
    index: Annotated[str, Field(pattern=r"^[a-z0-9_][a-z0-9_-]{0,79}$")] | None = Field(
        None, description="Target index (the token's default when empty)."
    )
    source: Text = Field("authtrail", description="The events' source.")
    sourcetype: Text = Field("authtrail:auth", description="The events' sourcetype.")
    host: Text | None = Field(None, description="The events' host (authtrail when empty).")
    verify_tls: bool = Field(True, description="Check the HEC certificate (keep it on).")
    indexer_ack: bool = Field(
        False, description="Count events delivered only once indexed (HEC acknowledgment)."
    )

    @field_validator("token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(r"[A-Za-z0-9-]{8,128}", value.get_secret_value()):
            raise ValueError("is not a HEC token")
        return value


@platform(
    "sumologic",
    "Sumo Logic",
    "Auth events to a Sumo Logic HTTP source: search and alert on them in Sumo.",
)
class SumoLogicSettings(PlatformSettings):
    SECRETS = ("url",)
    url: SecretStr = Field(description="The HTTP source URL (it is the secret).")
    category: Text | None = Field(None, description="Source category (X-Sumo-Category).")
    name: Text | None = Field(None, description="Source name (X-Sumo-Name).")
    host: Text | None = Field(None, description="Source host (X-Sumo-Host).")
    fields: Annotated[str, Field(max_length=2000)] = Field(
        "", description="Fields: key=value,key=value (X-Sumo-Fields)."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value().strip()
        if not _SUMO_URL.fullmatch(text):
            raise ValueError(
                "must be an HTTP source URL: https://<endpoint>/receiver/v1/http/<code>"
            )
        return SecretStr(text)

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: str) -> str:
        if value and not _FIELDS.fullmatch(value):
            raise ValueError("must be 'key=value,key=value'")
        return value


@platform(
    "coralogix",
    "Coralogix",
    "Auth events as Coralogix logs, with severity by outcome, for alerts and archives.",
)
class CoralogixSettings(PlatformSettings):
    SECRETS = ("api_key",)
    ADDRESS = ("endpoint", "domain")
    domain: Literal["us1", "us2", "us3", "eu1", "eu2", "ap1", "ap2", "ap3"] = Field(
        "eu1", description="Your Coralogix region."
    )
    api_key: SecretStr = Field(description="Send-Your-Data API key.")
    application: Text = Field("authtrail", description="The logs' application name.")
    subsystem: Text = Field("auth", description="The logs' subsystem name.")

    @field_validator("api_key")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(r"[A-Za-z0-9_-]{16,128}", value.get_secret_value()):
            raise ValueError("is not a Send-Your-Data API key")
        return value


SETTINGS_MODELS: dict[str, type[PlatformSettings]] = {
    key: spec.settings for key, spec in PLATFORM_SPECS.items()
}
PLATFORMS: tuple[str, ...] = tuple(PLATFORM_SPECS)

"""The destination platforms: one settings model per platform, validated strictly (site,
domain and region lists, ARN and URL formats), each registered once with ``@platform``.
Setting keys are the same everywhere (CLI ``--set key=value``, the API, the page's form)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from schemas.standard_webhooks import message_id, new_secret, secret_key, signed_headers

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
    one requires every secret again (``updated_destination``) but those in ``NEVER_SENT``
    (signing keys: no request carries them); ``GENERATED`` the secrets
    made when not given (shown once, in the reply that made them); ``HIDDEN`` the settings
    that operations set, not the form."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    SECRETS: ClassVar[tuple[str, ...]] = ()
    ADDRESS: ClassVar[tuple[str, ...]] = ("endpoint",)
    GENERATED: ClassVar[tuple[str, ...]] = ()
    HIDDEN: ClassVar[tuple[str, ...]] = ()
    NEVER_SENT: ClassVar[tuple[str, ...]] = ()
    endpoint: HttpUrlText | None = Field(
        None, description="Overrides the platform address (a proxy, a test receiver)."
    )

    def shown(self) -> dict[str, Any]:
        """The settings for display: every secret as ``redacted`` shows it."""
        return {
            key: self.redacted(key, value) if key in self.SECRETS and value is not None else value
            for key, value in self.model_dump().items()
        }

    def redacted(self, key: str, value: SecretStr) -> Any:
        """How a secret setting is shown: only that it is set, and how it ends."""
        text = value.get_secret_value()
        return f"••••{text[-4:]}" if len(text) >= 12 else "••••"


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


class AwsSettings(PlatformSettings):
    """What every AWS destination has: a region, and either both keys or neither (the
    default AWS credential chain: environment, profile, instance or task role)."""

    SECRETS: ClassVar[tuple[str, ...]] = ("secret_access_key",)
    ADDRESS: ClassVar[tuple[str, ...]] = ("endpoint", "region")
    region: str = Field(description="AWS region, e.g. eu-west-1.")
    access_key_id: Annotated[str, Field(pattern=r"^[A-Z0-9]{16,128}$")] | None = Field(
        None, description="Leave both keys empty to use the default AWS credential chain."
    )
    secret_access_key: SecretStr | None = Field(None, description="Goes with the access key id.")

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _AWS_REGION.fullmatch(value):
            raise ValueError("is not an AWS region name (e.g. eu-west-1)")
        return value

    @model_validator(mode="after")
    def _both_keys(self) -> AwsSettings:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError(
                "access_key_id and secret_access_key go together (or neither: "
                "the default AWS credential chain)"
            )
        return self


@platform(
    "eventbridge",
    "Amazon EventBridge",
    "Auth events on an event bus: route them to Lambda, SQS, Step Functions or SIEMs.",
)
class EventBridgeSettings(AwsSettings):
    event_bus: Annotated[str, Field(min_length=1, max_length=1600)] = Field(
        "default", description="Bus name or ARN."
    )
    source: Annotated[str, Field(min_length=1, max_length=256)] = Field(
        "authtrail", description="The events' Source (rules match on it)."
    )

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


# S3's rules for a bucket name (general purpose buckets): 3-63 characters, lower-case
# letters, digits, dots and hyphens, starting and ending with a letter or digit, not an IP
# address.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4 = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
# Key prefix segments: what needs no URL encoding (S3's "safe characters").
_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*$")
_KMS_KEY = re.compile(
    r"^(arn:aws(-[a-z]+)*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[A-Za-z0-9/_-]+"
    r"|alias/[A-Za-z0-9/_-]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|mrk-[0-9a-f]{32})$"
)
STORAGE_CLASSES = (
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
)


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


@platform(
    "s3",
    "Amazon S3 archive",
    "Every event kept in your bucket as gzip NDJSON, partitioned by account, date and hour "
    "(Athena, Spark and ClickHouse read it as is).",
)
class S3Settings(AwsSettings):
    ADDRESS = ("endpoint", "region", "bucket")
    bucket: str = Field(description="The bucket the archive is written to.")
    prefix: Annotated[str, Field(max_length=512)] = Field(
        "authtrail", description="Key prefix, e.g. audit/auth (empty: the bucket's root)."
    )
    max_bytes: int = Field(
        67_108_864,
        ge=1024,
        le=1_073_741_824,
        description="Close the open files once they hold this many bytes (uncompressed).",
    )
    max_seconds: int = Field(
        300, ge=1, le=86_400, description="Close the open files at the latest this long after."
    )
    storage_class: Literal[STORAGE_CLASSES] = Field(  # type: ignore[valid-type]
        "STANDARD", description="The objects' storage class."
    )
    sse: Literal["AES256", "aws:kms"] | None = Field(
        None, description="Server-side encryption (the bucket's default when empty)."
    )
    kms_key_id: str | None = Field(
        None, description="With sse aws:kms: the key's id, ARN or alias (AWS managed when empty)."
    )

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if not _BUCKET.fullmatch(value) or ".." in value or _IPV4.fullmatch(value):
            raise ValueError(
                "is not an S3 bucket name (3-63 lower-case letters, digits, dots, hyphens)"
            )
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        text = value.strip("/")
        if text and not _PREFIX.fullmatch(text):
            raise ValueError("must be path segments of letters, digits and !_.*'()- separated by /")
        return text

    @field_validator("kms_key_id")
    @classmethod
    def _kms_key(cls, value: str | None) -> str | None:
        if value is not None and not _KMS_KEY.fullmatch(value):
            raise ValueError("is not a KMS key id, key ARN or alias")
        return value

    @model_validator(mode="after")
    def _encryption(self) -> S3Settings:
        if self.kms_key_id is not None and self.sse != "aws:kms":
            raise ValueError("kms_key_id goes with sse aws:kms")
        return self


# Header names a webhook destination may not set: the signature's own, and what the
# HTTP client decides (framing, length, encoding, the host the request goes to).
_RESERVED_HEADERS = frozenset(
    {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "host",
        "connection",
    }
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$")  # an RFC 9110 token
MAX_GRACE_S = 30 * 86_400


def _headers(value: object) -> SecretStr | None:
    """Extra headers as given (an object, or ``Name: value`` lines) -> a JSON object kept
    as a secret (the values are write-only)."""
    if value is None or isinstance(value, SecretStr):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise ValueError("must be a JSON object or 'Name: value' lines") from None
        else:
            pairs = {}
            for line in text.splitlines():
                if not line.strip():
                    continue
                name, sep, item = line.partition(":")
                if not sep:
                    raise ValueError("must be 'Name: value' lines")
                pairs[name.strip()] = item.strip()
            value = pairs
    if not isinstance(value, dict):
        raise ValueError("must be an object of header names to values")
    if len(value) > 20:
        raise ValueError("at most 20 headers")
    for name, item in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ValueError("a header name must be an HTTP token (letters, digits, -)")
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"{name} is set by authtrail")
        if not isinstance(item, str) or _CONTROL.search(item) or len(item) > 4096:
            raise ValueError(f"the value of {name} must be text without control characters")
    return SecretStr(orjson.dumps(value).decode()) if value else None


def _signing_secret(value: SecretStr) -> SecretStr:
    secret_key(value.get_secret_value())
    return value


def _previous_secrets(value: SecretStr | None) -> SecretStr | None:
    if value is None:
        return None
    try:
        items = orjson.loads(value.get_secret_value())
        for item in items:
            secret_key(item["secret"])
            float(item["until"])
    except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
        raise ValueError("must be a list of {secret, until} (set by a rotation)") from None
    return value


@platform(
    "webhook",
    "Webhook",
    "Auth events to any HTTPS endpoint, signed by the Standard Webhooks specification.",
)
class WebhookSettings(PlatformSettings):
    SECRETS = ("secret", "headers", "previous_secrets")
    GENERATED = ("secret",)
    HIDDEN = ("previous_secrets",)
    NEVER_SENT = ("secret", "previous_secrets")
    ADDRESS = ("endpoint", "url", "verify_tls")
    url: HttpUrlText = Field(description="Where batches are POSTed (https://...).")
    secret: Annotated[SecretStr, AfterValidator(_signing_secret)] = Field(
        default_factory=lambda: SecretStr(new_secret()),
        description="Signing secret (whsec_ and base64). Generated when empty, shown once.",
    )
    headers: Annotated[SecretStr | None, BeforeValidator(_headers)] = Field(
        None,
        description="Extra headers, one 'Name: value' a line (values are write-only).",
        json_schema_extra={"x-multiline": True},
    )
    format: Literal["json_array", "ndjson"] = Field(
        "json_array", description="A JSON array of events, or one event a line (NDJSON)."
    )
    max_events: int = Field(100, ge=1, le=10_000, description="Events per request at most.")
    max_bytes: int = Field(
        1_048_576, ge=4096, le=16_777_216, description="Bytes per request at most."
    )
    verify_tls: bool = Field(True, description="Check the endpoint's certificate (keep it on).")
    previous_secrets: Annotated[SecretStr | None, AfterValidator(_previous_secrets)] = Field(
        None, description="Secrets still signing while a rotation's grace period runs."
    )

    def extra_headers(self) -> dict[str, str]:
        """The configured extra headers (their values in clear: for requests only)."""
        return orjson.loads(self.headers.get_secret_value()) if self.headers else {}

    def signature_headers(self, scope: str, body: bytes, now: float) -> dict[str, str]:
        """The Standard Webhooks headers of ``body`` sent at ``now`` (``scope``: whose
        message it is, for its id), signed with every secret in use then."""
        keys = [secret_key(secret) for secret in self.signing_secrets(now)]
        return signed_headers(keys, message_id(scope, body), int(now), body)

    def signing_secrets(self, now: float) -> list[str]:
        """The secrets that sign a request at ``now``: the current one first, then each
        rotated-out one whose grace period has not ended."""
        return [self.secret.get_secret_value(), *(s for s, _ in self._previous(now))]

    def redacted(self, key: str, value: SecretStr) -> Any:
        if key == "headers":  # the names, not the values
            return dict.fromkeys(orjson.loads(value.get_secret_value()), "••••")
        if key == "previous_secrets":
            items = orjson.loads(value.get_secret_value())
            return [{"secret": "••••", "until": item["until"]} for item in items]
        return super().redacted(key, value)

    def rotated(self, now: float, grace_s: float, secret: str | None = None) -> WebhookSettings:
        """These settings with a new signing secret (``secret``, or a generated one); the
        current one keeps signing beside it for ``grace_s`` seconds. Rotated-out secrets
        whose grace has ended are dropped. Raises ``ValueError`` for a bad grace or
        secret."""
        if not 0 <= grace_s <= MAX_GRACE_S:
            raise ValueError(f"grace must be 0 to {MAX_GRACE_S} seconds (30 days)")
        fresh = secret or new_secret()
        secret_key(fresh)
        kept: list[dict[str, Any]] = [{"secret": s, "until": u} for s, u in self._previous(now)]
        if grace_s > 0:
            kept.append({"secret": self.secret.get_secret_value(), "until": now + grace_s})
        previous = SecretStr(orjson.dumps(kept).decode()) if kept else None
        return self.model_copy(update={"secret": SecretStr(fresh), "previous_secrets": previous})

    def _previous(self, now: float) -> list[tuple[str, float]]:
        if self.previous_secrets is None:
            return []
        items = orjson.loads(self.previous_secrets.get_secret_value())
        return [(i["secret"], float(i["until"])) for i in items if float(i["until"]) > now]


SETTINGS_MODELS: dict[str, type[PlatformSettings]] = {
    key: spec.settings for key, spec in PLATFORM_SPECS.items()
}
PLATFORMS: tuple[str, ...] = tuple(PLATFORM_SPECS)

"""The ``authtrail`` command line."""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, BinaryIO

import click
from pydantic import ValidationError

from infra.secrets import MissingSecretKeyError
from schemas.destinations import PLATFORMS
from schemas.keys import WeakSecretKeyError
from schemas.settings import Settings

if TYPE_CHECKING:
    from connectors.config import DestinationStore
    from schemas.destinations import Destination

log = logging.getLogger("authtrail")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        lines = [
            f"AUTHTRAIL_{'_'.join(str(p) for p in e['loc']).upper()}: "
            + str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors()
        ]
        raise click.UsageError("invalid configuration:\n  " + "\n  ".join(lines)) from None


class _DropStartupRetries(logging.Filter):
    """librdkafka warns while a fresh broker loads its coordinators, then retries and
    succeeds on its own: not worth an operator's attention."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "load in progress: retrying" not in record.getMessage()


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_DropStartupRetries())
    # aiokafka, faust and mode narrate every start, stop and rebalance at INFO.
    if logging.getLogger().level > logging.DEBUG:
        for noisy in ("aiokafka", "faust", "mode", "uvicorn.error"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    # httpx logs every request's URL at INFO, and a Sumo Logic source URL is a secret: at
    # any level, only its warnings.
    for leaky in ("httpx", "httpcore"):
        logging.getLogger(leaky).setLevel(logging.WARNING)


def _fail(message: str) -> None:
    click.echo(f"authtrail: {message}", err=True)
    sys.exit(1)


class _Commands(click.Group):
    """Configuration errors found while a command runs end it with their message, not a
    traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (MissingSecretKeyError, WeakSecretKeyError) as exc:
            _fail(str(exc))
            return None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """authtrail: audit trail for identity and authentication events."""


# -- up ----------------------------------------------------------------------------------
class _Interrupted(Exception):
    pass


def _raise_interrupted(_signum: int, _frame: FrameType | None) -> None:
    raise _Interrupted


@main.command()
@click.option("--demo", is_flag=True, help="Also produce demo traffic.")
@click.option("--demo-rate", default=20.0, show_default=True, help="Demo events per second.")
def up(demo: bool, demo_rate: float) -> None:
    """Run the whole system: Kafka (embedded unless AUTHTRAIL_KAFKA_BOOTSTRAP is set),
    topics, the ingest worker with the log store and the query API, and the connectors,
    until Ctrl-C."""
    from authtrail.kafka_local import KafkaError, LocalKafka, port_in_use
    from authtrail.worker import run_worker
    from infra.kafka.topic_admin import ensure_topics, wait_for_group_coordinator
    from schemas.log_store import StoreUnavailableError

    settings = _settings()
    _setup_logging(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if port_in_use(settings.api_port, settings.api_connect_host):
        _fail(f"port {settings.api_port} is already in use; set AUTHTRAIL_API_PORT")
    kafka = LocalKafka(settings) if settings.embedded_kafka else None
    started_broker = False
    # Until faust takes over the signals, a SIGTERM must still stop the broker we start.
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    code = 1
    try:
        if kafka is not None:
            started_broker = kafka.pid() is None
            click.echo(
                f"Starting Kafka {settings.kafka_version} on {kafka.bootstrap} ..."
                if started_broker
                else f"Using the running broker on {kafka.bootstrap}"
            )
            kafka.start()
        created = ensure_topics(settings)
        log.info("topics: %s", ", ".join(f"{k} ({v})" for k, v in created.items()))
        wait_for_group_coordinator(settings, settings.ingest_group)
        first_admin = _first_run_admin_token(settings)
        signal.signal(signal.SIGTERM, previous)
        sign_in = (
            f"  Sign in (first run; this admin token is shown once): "
            f"{settings.api_url}/login#token={first_admin}"
            if first_admin
            else "  Sign in with a token: authtrail token create --role admin|viewer"
        )
        banner = [
            "",
            f"authtrail is running: {settings.api_url}/",
            sign_in,
            f"  API: {settings.api_url}/api/v1/logs   OpenAPI: {settings.api_url}/docs",
            f"  Kafka: {settings.bootstrap_servers}   data: {settings.data_dir}",
            "  Ctrl-C stops everything.",
            "",
        ]
        code = run_worker(
            settings,
            with_api=True,
            with_connectors=True,
            demo_rate=demo_rate if demo else None,
            banner=banner,
        )
    except _Interrupted:
        code = 0
    except KeyboardInterrupt:
        code = 0
    except (KafkaError, StoreUnavailableError) as exc:
        click.echo(f"authtrail: {exc}", err=True)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if kafka is not None and started_broker:
            # Stop it first: the terminal (or a pipe reading our output) may be gone.
            with contextlib.suppress(OSError):
                click.echo("Stopping the Kafka broker ...")
            kafka.stop()
    sys.exit(code)


def _first_run_admin_token(settings: Settings) -> str | None:
    """Creates an admin token when the installation has no active one; returns it."""
    from query_api.tokens import TokenLog, create_token

    with TokenLog(settings) as view:
        if any(r.active and r.role == "admin" for r in view.records()):
            return None
    plaintext, _record = create_token(settings, "admin", "first admin (authtrail up)")
    return plaintext


# -- tokens ------------------------------------------------------------------------------
_DURATION_UNITS = {"d": 86_400, "h": 3_600, "m": 60}


def parse_duration(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m`` as a timedelta; raises ``ValueError`` naming the format."""
    value, unit = text.strip()[:-1], text.strip()[-1:].lower()
    if unit not in _DURATION_UNITS or not value.isdigit() or int(value) == 0:
        raise ValueError(f"{text!r} is not a duration like 90d, 12h or 30m")
    return timedelta(seconds=int(value) * _DURATION_UNITS[unit])


@main.group()
def token() -> None:
    """API tokens (stored hashed in the authtrail.tokens topic)."""


@token.command("create")
@click.option("--role", type=click.Choice(["admin", "viewer"]), required=True)
@click.option("--account", default=None, help="Only this account's events are visible.")
@click.option("--name", default=None, help="What the token is for.")
@click.option(
    "--expires-in",
    default=None,
    metavar="DURATION",
    help="Stops working after this long: 90d, 12h, 30m (default: until revoked).",
)
def token_create(role: str, account: str | None, name: str | None, expires_in: str | None) -> None:
    """Create a token and print it (it is shown only once)."""
    from query_api.tokens import TokenLogError, create_token

    settings = _settings()
    _setup_logging(settings)
    expires_at = None
    if expires_in is not None:
        try:
            expires_at = datetime.now(UTC) + parse_duration(expires_in)
        except ValueError as exc:
            _fail(f"--expires-in: {exc}")
    try:
        plaintext, record = create_token(
            settings,
            "admin" if role == "admin" else "viewer",
            name or f"{role} token",
            account,
            expires_at,
        )
    except (TokenLogError, ValueError) as exc:
        _fail(str(exc))
    click.echo(plaintext)
    scope = f", account {record.account}" if record.account else ""
    until = f", expires {record.expires_at:%Y-%m-%d %H:%M}Z" if record.expires_at else ""
    click.echo(
        f"id {record.id}, role {record.role}{scope}{until}. "
        f"Sign in: {settings.api_url}/login#token={plaintext}",
        err=True,
    )


@token.command("list")
def token_list() -> None:
    """List tokens (never their secrets)."""
    from query_api.tokens import TokenLog

    settings = _settings()
    _setup_logging(settings)
    with TokenLog(settings) as view:
        for r in view.records():
            if r.revoked_at:
                state = f"revoked {r.revoked_at:%Y-%m-%d %H:%M}Z"
            elif r.expires_at:
                state = f"{r.state} {r.expires_at:%Y-%m-%d %H:%M}Z"
            else:
                state = "active"
            click.echo(f"{r.id}  {r.role:6}  {r.account or '*':16}  {state:24}  {r.name}")


@token.command("revoke")
@click.argument("token_id")
def token_revoke(token_id: str) -> None:
    """Revoke a token: it stops working, and its sessions end, within a moment."""
    from query_api.tokens import TokenLog, TokenLogError, revoke_token

    settings = _settings()
    _setup_logging(settings)
    with TokenLog(settings) as view:
        try:
            revoke_token(settings, view, token_id)
        except TokenLogError as exc:
            _fail(str(exc))
    click.echo(f"revoked {token_id}")


# -- secrets -------------------------------------------------------------------------------
@main.group("secrets")
def secrets_group() -> None:
    """The installation's secret key (AUTHTRAIL_SECRET_KEY)."""


@secrets_group.command("rotate")
def secrets_rotate() -> None:
    """Re-seal every destination's secrets with the current key.

    To change the key: set the new one as AUTHTRAIL_SECRET_KEY and the old one as
    AUTHTRAIL_SECRET_KEY_PREVIOUS on every process and restart them, run this, then remove
    AUTHTRAIL_SECRET_KEY_PREVIOUS (sessions signed with the old key end then)."""
    from schemas.destinations import DestinationError

    settings = _settings()
    _setup_logging(settings)
    with _destination_store(settings) as store:
        try:
            resealed = store.reseal()
        except DestinationError as exc:
            _fail(str(exc))
    click.echo(f"re-sealed {len(resealed)} destination(s) with the current key")
    if settings.secret_key_previous is not None:
        click.echo("AUTHTRAIL_SECRET_KEY_PREVIOUS can now be removed from every process")


# -- destinations ------------------------------------------------------------------------
@main.group()
def destinations() -> None:
    """Streaming destinations (stored in the authtrail.destinations topic)."""


def _destination_store(settings: Settings) -> DestinationStore:
    from connectors.config import DestinationStore

    return DestinationStore(settings)


def _describe_destination(d: Destination) -> str:
    state = "paused" if d.paused else "enabled"
    return f"{d.id}  {d.platform:11}  {state:7}  {d.name}"


@destinations.command("add")
@click.argument("platform", type=click.Choice(PLATFORMS))
@click.option("--name", required=True, help="A name to recognise it by.")
@click.option(
    "--set",
    "values",
    multiple=True,
    metavar="KEY=VALUE",
    help="A setting (repeat); e.g. --set api_key=... --set filter.outcomes=failure",
)
def destinations_add(platform: str, name: str, values: tuple[str, ...]) -> None:
    """Add a destination; prints its id."""
    from schemas.destinations import DestinationError

    settings = _settings()
    _setup_logging(settings)
    pairs = _setting_pairs(values)
    with _destination_store(settings) as store:
        try:
            destination = store.add(platform, name, pairs)
        except DestinationError as exc:
            _fail(f"invalid destination: {exc}")
    click.echo(destination.id)


def _setting_pairs(values: tuple[str, ...]) -> dict[str, str | None]:
    pairs: dict[str, str | None] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            # Only the key: the value may be a secret.
            _fail(f"--set takes KEY=VALUE, not {item.split('=')[0]!r}")
        pairs[key.strip()] = value
    return pairs


@destinations.command("update")
@click.argument("destination_id")
@click.option("--name", default=None, help="A new name.")
@click.option("--set", "values", multiple=True, metavar="KEY=VALUE", help="Change a setting.")
@click.option(
    "--unset", "unset", multiple=True, metavar="KEY", help="Put a setting back to its default."
)
def destinations_update(
    destination_id: str, name: str | None, values: tuple[str, ...], unset: tuple[str, ...]
) -> None:
    """Change a destination: only what is given. Stored secrets are kept, except when the
    change moves it (endpoint, site, URL, region, domain, verify_tls): then give every
    secret again with --set, as a stored secret is only sent where it was saved for."""
    from schemas.destinations import DestinationError, updated_destination

    settings = _settings()
    _setup_logging(settings)
    changes = {**_setting_pairs(values), **dict.fromkeys((k.strip() for k in unset), None)}
    with _destination_store(settings) as store:
        try:
            store.replace(updated_destination(store.require(destination_id), name, changes))
        except DestinationError as exc:
            _fail(f"invalid destination: {exc}")
    click.echo(f"updated {destination_id}")


@destinations.command("list")
def destinations_list() -> None:
    """List destinations."""
    settings = _settings()
    _setup_logging(settings)
    with _destination_store(settings) as store:
        for d in store.all():
            click.echo(_describe_destination(d))


@destinations.command("show")
@click.argument("destination_id")
def destinations_show(destination_id: str) -> None:
    """Show one destination (secrets redacted)."""
    import orjson

    from schemas.destinations import DestinationError

    settings = _settings()
    _setup_logging(settings)
    with _destination_store(settings) as store:
        try:
            d = store.require(destination_id)
        except DestinationError as exc:
            _fail(str(exc))
    shown = {
        "id": d.id,
        "name": d.name,
        "platform": d.platform,
        "paused": d.paused,
        "settings": d.redacted_settings(),
        "filter": d.filter.model_dump(),
        "consumer_group": d.group_id,
        "dead_letter_topic": settings.topics.destination_dlq(d.id),
        "created_at": d.created_at.isoformat(),
        "updated_at": d.updated_at.isoformat(),
    }
    click.echo(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())


def _change_destination(destination_id: str, action: str) -> None:
    from schemas.destinations import DestinationError

    settings = _settings()
    _setup_logging(settings)
    with _destination_store(settings) as store:
        try:
            if action == "remove":
                store.remove(destination_id)
            else:
                store.set_paused(destination_id, action == "pause")
        except DestinationError as exc:
            _fail(str(exc))
    done = {"remove": "removed", "pause": "paused", "resume": "resumed"}[action]
    click.echo(f"{done} {destination_id}")


@destinations.command("remove")
@click.argument("destination_id")
def destinations_remove(destination_id: str) -> None:
    """Remove a destination (its consumer group and dead letters stay in Kafka)."""
    _change_destination(destination_id, "remove")


@destinations.command("pause")
@click.argument("destination_id")
def destinations_pause(destination_id: str) -> None:
    """Pause delivery: the destination falls behind and resumes where it stopped."""
    _change_destination(destination_id, "pause")


@destinations.command("resume")
@click.argument("destination_id")
def destinations_resume(destination_id: str) -> None:
    """Resume delivery."""
    _change_destination(destination_id, "resume")


@destinations.command("manifests")
@click.option("--image", default="authtrail", show_default=True, help="The container image.")
@click.option(
    "--lag-threshold",
    type=click.IntRange(min=1),
    default=None,
    help="Events behind per replica before KEDA adds one (default 20,000).",
)
def destinations_manifests(image: str, lag_threshold: int | None) -> None:
    """Print Kubernetes manifests running each enabled destination on its own: a
    Deployment, a PodDisruptionBudget and a KEDA ScaledObject on its consumer-group lag
    (kubectl apply -f -). Use them instead of the shared authtrail-connectors."""
    from authtrail.kubernetes import DEFAULT_LAG_THRESHOLD, destination_connectors, to_yaml

    settings = _settings()
    _setup_logging(settings)
    with _destination_store(settings) as store:
        manifests = destination_connectors(
            store.all(), settings, image, lag_threshold or DEFAULT_LAG_THRESHOLD
        )
    header = "# authtrail destinations manifests: one connector Deployment per destination\n"
    click.echo(to_yaml(manifests, header), nl=False)


@destinations.command("status")
@click.argument("destination_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def destinations_status(destination_id: str | None, as_json: bool) -> None:
    """State, lag, delivered, dead-lettered, retries, last success and last error."""

    import orjson

    from connectors.admin.status import StatusBoard
    from schemas.destinations import DestinationError

    settings = _settings()
    _setup_logging(settings)
    with _destination_store(settings) as store:
        try:
            chosen = store.all() if destination_id is None else [store.require(destination_id)]
        except DestinationError as exc:
            _fail(str(exc))
    with StatusBoard(settings) as board:
        rows = [board.summary(d) for d in chosen]
    if as_json:
        click.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    for r in rows:
        click.echo(
            f"{r['id']}  {r['platform']:11}  {r['state']:11}  lag {r['lag']:>8}  "
            f"delivered {r['delivered']:>9}  dead-lettered {r['dead_lettered']:>6}  "
            f"retries {r['retries']:>6}  {r['name']}"
        )
        if r["last_error"]:
            click.echo(f"    last error: {r['last_error']}")


# -- connectors --------------------------------------------------------------------------
@main.group()
def connectors() -> None:
    """The Stream side: connector consumers."""


@connectors.command("run")
@click.option("--destination", "only", multiple=True, help="Only this destination (repeat).")
def connectors_run(only: tuple[str, ...]) -> None:
    """Run one consumer per enabled destination until Ctrl-C; follows changes live."""
    from authtrail.health import Heartbeat
    from connectors.runtime.supervisor import ConnectorRuntime

    settings = _settings()
    _setup_logging(settings)
    beat = Heartbeat()
    runtime = ConnectorRuntime(settings, only, beat=beat.beat)

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        runtime.stop()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    if settings.metrics_port:
        from prometheus_client import CollectorRegistry

        from authtrail.health import ProbePortError, ProbeServer

        registry = CollectorRegistry()
        registry.register(runtime.metrics())
        try:
            ProbeServer(
                settings.api_host, settings.metrics_port, registry, beat.stalled, beat.not_started
            ).start()
        except ProbePortError as exc:
            _fail(str(exc))
        click.echo(
            f"metrics and probes: http://{settings.api_connect_host}:{settings.metrics_port}"
            "/metrics, /livez, /readyz"
        )
    runtime.run()


@main.command()
@click.argument("url")
@click.option("--timeout", default=3.0, show_default=True, help="Seconds.")
def probe(url: str, timeout: float) -> None:
    """Exit 0 when URL answers 2xx, else 1: a container health check that needs no curl
    (e.g. http://127.0.0.1:9464/readyz)."""
    import httpx

    try:
        reply = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        _fail(f"{url}: {type(exc).__name__}")
    if not reply.is_success:
        _fail(f"{url}: {reply.status_code} {reply.text[:200]}")
    click.echo(f"{url}: {reply.status_code}")


# -- store -------------------------------------------------------------------------------
@main.group()
def store() -> None:
    """The log store's schema (ClickHouse or embedded chDB)."""


@store.command("ddl")
@click.option("--retention-days", type=int, default=None, help="Default: the setting.")
def store_ddl(retention_days: int | None) -> None:
    """Print every statement 'store migrate' would run on an empty database (for review)."""
    from schemas.log_store import StoreUnavailableError, ddl, location_of

    settings = _settings()
    try:
        location = location_of(settings)
    except StoreUnavailableError as exc:
        _fail(str(exc))
    for statement in ddl(location, retention_days or settings.retention_days):
        click.echo(" ".join(statement.split()) + ";")


@store.command("migrate")
def store_migrate() -> None:
    """Bring the log store's schema up to date, then exit (a deploy step: run it once
    before the workers on a cluster; they would otherwise each try)."""
    from infra.clickhouse.client import open_migrated
    from schemas.log_store import StoreUnavailableError, location_of

    settings = _settings()
    _setup_logging(settings)
    try:
        location = location_of(settings)
        applied = open_migrated(settings)[1]
    except StoreUnavailableError as exc:
        _fail(str(exc))
    except Exception as exc:  # a server error: say which, never the URL's password
        message = str(exc).replace(location.url, location.safe_url)
        _fail(f"migrating {location.safe_url} failed: {type(exc).__name__}: {message}"[:600])
    click.echo(f"log store at {location.safe_url}: applied {applied or 'nothing (up to date)'}")


# -- kafka -------------------------------------------------------------------------------
@main.group()
def kafka() -> None:
    """The local Kafka broker of the embedded set-up."""


@kafka.command("fetch")
def kafka_fetch() -> None:
    """Fetch the broker's jars from Maven Central (once; cached)."""
    from authtrail.kafka_local import KafkaError, LocalKafka

    settings = _settings()
    _setup_logging(settings)
    try:
        click.echo(LocalKafka(settings).ensure_jars())
    except KafkaError as exc:
        _fail(str(exc))


@kafka.command("start")
def kafka_start() -> None:
    """Start the broker in the background and wait until it answers."""
    from authtrail.kafka_local import KafkaError, LocalKafka

    settings = _settings()
    _setup_logging(settings)
    if not settings.embedded_kafka:
        _fail("AUTHTRAIL_KAFKA_BOOTSTRAP is set: that cluster is used, no local broker")
    try:
        pid = LocalKafka(settings).start()
    except KafkaError as exc:
        _fail(str(exc))
    click.echo(
        f"Kafka {settings.kafka_version} running on {settings.bootstrap_servers} (pid {pid})"
    )


@kafka.command("stop")
def kafka_stop() -> None:
    """Stop the broker cleanly."""
    from authtrail.kafka_local import LocalKafka

    settings = _settings()
    stopped = LocalKafka(settings).stop()
    click.echo("stopped" if stopped else "not running")


@kafka.command("status")
def kafka_status() -> None:
    """Show whether the broker runs and answers. Exit 1 when it does not."""
    from authtrail.kafka_local import LocalKafka

    settings = _settings()
    status = LocalKafka(settings).status()
    if status.running:
        state = "answering" if status.answering else "not answering"
        click.echo(f"running (pid {status.pid}) on {status.bootstrap}, {state}")
    else:
        click.echo(f"not running ({status.bootstrap})")
    sys.exit(0 if status.running and status.answering else 1)


# -- topics ------------------------------------------------------------------------------
@main.group()
def topics() -> None:
    """Kafka topics."""


@topics.command("create")
def topics_create() -> None:
    """Create the pipeline's topics (idempotent)."""
    from infra.kafka.topic_admin import ensure_topics

    settings = _settings()
    _setup_logging(settings)
    for name, state in ensure_topics(settings).items():
        click.echo(f"{name}: {state}")


# -- processes ---------------------------------------------------------------------------
@main.command()
def ingest() -> None:
    """Run the faust ingest worker alone (no query API; probes and metrics on
    AUTHTRAIL_METRICS_PORT)."""
    from authtrail.health import ProbePortError
    from authtrail.worker import run_worker
    from schemas.log_store import StoreUnavailableError

    settings = _settings()
    _setup_logging(settings)
    try:
        sys.exit(run_worker(settings, with_api=False))
    except (StoreUnavailableError, ProbePortError) as exc:
        _fail(str(exc))


@main.command()
def api() -> None:
    """Run the query API alone (for a ClickHouse server; with embedded chDB the API runs
    inside the worker: use 'authtrail up')."""
    import uvicorn

    from infra.clickhouse.client import open_migrated
    from query_api.app import app_for
    from query_api.server import server_config
    from schemas.log_store import StoreUnavailableError

    settings = _settings()
    _setup_logging(settings)
    try:
        location = open_migrated(settings)[0]
    except StoreUnavailableError as exc:
        _fail(str(exc))
    click.echo(f"Query API on {settings.api_url}")
    app = app_for(settings, location)
    uvicorn.Server(server_config(app, settings)).run()


@main.command()
@click.argument("file", type=click.File("rb"))
def produce(file: BinaryIO) -> None:
    """Produce raw events from a JSON-lines FILE ('-' for stdin)."""
    from authtrail.produce import RawProducer, json_lines

    settings = _settings()
    _setup_logging(settings)
    producer = RawProducer(settings)
    producer.send_all(json_lines(file))
    report = producer.flush()
    click.echo(
        f"{report.accepted} accepted, {report.failed} failed"
        + (f" ({report.first_error})" if report.first_error else "")
    )
    sys.exit(1 if report.failed else 0)


@main.group()
def dlq() -> None:
    """The ingest dead-letter topic."""


@dlq.command("show")
@click.option("--limit", default=20, show_default=True, help="Most dead letters to show.")
def dlq_show(limit: int) -> None:
    """Show dead letters with their reasons (oldest first)."""
    from authtrail import dlq as dead_letters

    settings = _settings()
    _setup_logging(settings)
    letters = dead_letters.show(settings, limit)
    for letter in letters:
        click.echo(f"{letter.dead_lettered_at}  {letter.source}  {letter.reason}")
        click.echo(f"    {letter.value[:200].decode(errors='replace')}")
    click.echo(f"{len(letters)} dead letter(s)")


@dlq.command("replay")
def dlq_replay() -> None:
    """Re-produce every dead letter not replayed before to the raw topic."""
    from authtrail import dlq as dead_letters

    settings = _settings()
    _setup_logging(settings)
    replayed, accepted = dead_letters.replay(settings)
    click.echo(f"{replayed} replayed, {accepted} accepted")


@main.command()
@click.option("--rate", default=50.0, show_default=True, help="Events per second.")
@click.option("--duration", default=60.0, show_default=True, help="Seconds; 0 runs until Ctrl-C.")
@click.option("--seed", type=int, default=None, help="Seed for reproducible traffic.")
def demo(rate: float, duration: float, seed: int | None) -> None:
    """Produce realistic synthetic auth traffic."""
    from authtrail.demo import run_demo
    from authtrail.produce import RawProducer

    settings = _settings()
    _setup_logging(settings)
    producer = RawProducer(settings)
    try:
        sent = run_demo(producer.send, rate, duration, seed=seed)
    except KeyboardInterrupt:
        sent = producer.report.accepted
    report = producer.flush()
    click.echo(f"{sent} sent, {report.accepted} accepted, {report.failed} failed")

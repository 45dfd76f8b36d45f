"""The embedded default's Kafka: a genuine single-node Apache Kafka broker in KRaft mode,
run with the machine's JDK from the official jars on Maven Central.

The jars are fetched once by Maven (``deploy/kafka/pom.xml``, dependency plugin) into
``<cache_dir>/kafka-<version>``; the broker's logs and metadata live in
``<data_dir>/kafka``."""

from __future__ import annotations

import base64
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from confluent_kafka.admin import AdminClient

from schemas.settings import Settings

log = logging.getLogger(__name__)

POM = Path(__file__).resolve().parents[1] / "deploy" / "kafka" / "pom.xml"

_LOG4J2 = """\
status = warn
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = {log_dir}/broker.log
appender.file.filePattern = {log_dir}/broker.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.state.name = state.change.logger
logger.state.level = WARN
"""


class KafkaError(RuntimeError):
    """The local broker cannot be fetched, started or stopped; the message says why."""


@dataclass(frozen=True, slots=True)
class BrokerStatus:
    running: bool
    pid: int | None
    answering: bool
    bootstrap: str


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def broker_answers(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """True when a broker at ``bootstrap`` answers a metadata request."""
    admin = AdminClient(
        {"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000, "logger": cast(Any, log)}
    )
    try:
        metadata = admin.list_topics(timeout=timeout_s)
        return bool(metadata.brokers)
    except Exception:
        return False


class LocalKafka:
    """Fetches, formats, starts and stops the local broker of one data dir."""

    def __init__(self, settings: Settings, advertised_port: int | None = None) -> None:
        """``advertised_port``: the port clients are told to reach the broker on, when
        something stands in front of it (a test's proxy); its own port by default."""
        self.settings = settings
        self.advertised_port = advertised_port or settings.kafka_port
        self.home = settings.data_dir / "kafka"
        self.jars = settings.cache_dir / f"kafka-{settings.kafka_version}"
        self.pid_file = self.home / "broker.pid"
        self.bootstrap = f"127.0.0.1:{settings.kafka_port}"

    # -- fetching --------------------------------------------------------------------------
    def ensure_jars(self) -> Path:
        """Copies the broker's jars from Maven Central into the cache (once)."""
        marker = self.jars / ".complete"
        if marker.exists():
            return self.jars
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaError(
                "Maven ('mvn') is needed once to fetch the Kafka broker: apt-get install maven"
            )
        if not POM.exists():
            raise KafkaError(f"{POM} is missing: run from an authtrail checkout")
        staging = self.jars.with_name(self.jars.name + f".tmp-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        log.info("fetching Apache Kafka %s from Maven Central (once)", self.settings.kafka_version)
        result = subprocess.run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-Dkafka.version={self.settings.kafka_version}",
                f"-DoutputDirectory={staging}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
            raise KafkaError("Maven could not fetch Kafka:\n" + "\n".join(tail))
        (staging / ".complete").write_text(self.settings.kafka_version)
        shutil.rmtree(self.jars, ignore_errors=True)
        staging.rename(self.jars)
        return self.jars

    # -- configuration --------------------------------------------------------------------
    def _write_config(self) -> Path:
        s = self.settings
        log_dirs = self.home / "data"
        log_dirs.mkdir(parents=True, exist_ok=True)
        config = self.home / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{s.kafka_controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{s.kafka_port},"
                    f"CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.advertised_port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={log_dirs}",
                    f"num.partitions={s.topic_partitions}",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=12",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                    "log.retention.hours=168",
                    "",
                ]
            )
        )
        (self.home / "log4j2.properties").write_text(_LOG4J2.format(log_dir=self.home))
        return config

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java or not Path(java).exists():
            raise KafkaError(
                "a Java runtime (17+) is needed for the local Kafka broker: "
                "apt-get install openjdk-17-jre-headless, or set "
                "AUTHTRAIL_KAFKA_BOOTSTRAP to use an existing cluster"
            )
        return java

    def _format(self, java: str, config: Path) -> None:
        if (self.home / "data" / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        result = subprocess.run(
            [
                java,
                "-cp",
                f"{self.jars}/*",
                f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
                "kafka.tools.StorageTool",
                "format",
                # "=": a random id may begin with "-", which would read as an option.
                f"--cluster-id={cluster_id}",
                "-c",
                str(config),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise KafkaError("formatting the broker's storage failed: " + result.stderr[-800:])

    # -- lifecycle ------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The pid of this data dir's broker, if it is running."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            return None
        if b"kafka.Kafka" not in cmdline or str(self.home).encode() not in cmdline:
            return None  # the pid was reused by something else
        return pid

    def status(self) -> BrokerStatus:
        pid = self.pid()
        answering = broker_answers(self.bootstrap, 1.5) if pid else False
        return BrokerStatus(pid is not None, pid, answering, self.bootstrap)

    def start(self, timeout_s: float = 90.0) -> int:
        """Starts the broker (detached, in its own session) and waits until it answers
        metadata requests. Returns its pid. Idempotent: a running broker is kept."""
        existing = self.pid()
        if existing:
            self.wait_ready(existing, timeout_s)
            return existing
        s = self.settings
        for port, name in (
            (s.kafka_port, "AUTHTRAIL_KAFKA_PORT"),
            (s.kafka_controller_port, "AUTHTRAIL_KAFKA_CONTROLLER_PORT"),
        ):
            if port_in_use(port):
                raise KafkaError(
                    f"port {port} is already in use by another program; set {name} "
                    "to a free port, or AUTHTRAIL_KAFKA_BOOTSTRAP to use a running "
                    "Kafka"
                )
        java = self._java()
        self.ensure_jars()
        config = self._write_config()
        self._format(java, config)
        out = (self.home / "broker.out").open("ab")
        process = subprocess.Popen(
            [
                java,
                f"-Xmx{s.kafka_heap}",
                f"-Xms{s.kafka_heap}",
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
                f"-Dkafka.logs.dir={self.home}",
                "-cp",
                f"{self.jars}/*",
                "kafka.Kafka",
                str(config),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.home,
        )
        out.close()
        self.pid_file.write_text(str(process.pid))
        self.wait_ready(process.pid, timeout_s, process)
        log.info(
            "Kafka %s broker running on %s (pid %d)", s.kafka_version, self.bootstrap, process.pid
        )
        return process.pid

    def wait_ready(
        self, pid: int, timeout_s: float, process: subprocess.Popen[bytes] | None = None
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise KafkaError(
                    f"the broker exited with code {process.returncode}:\n" + self._log_tail()
                )
            if process is None and self.pid() is None:
                raise KafkaError("the broker exited:\n" + self._log_tail())
            if broker_answers(self.bootstrap, 1.0):
                return
            time.sleep(0.3)
        raise KafkaError(
            f"the broker (pid {pid}) did not answer within {timeout_s:.0f}s:\n" + self._log_tail()
        )

    def stop(self, timeout_s: float = 60.0) -> bool:
        """Stops the broker cleanly (SIGTERM: controlled shutdown; SIGKILL only after
        ``timeout_s``). Returns False when none was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not _alive(pid):
                break
            time.sleep(0.2)
        else:
            log.warning("broker did not stop within %.0fs; killing it", timeout_s)
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True

    def _log_tail(self, lines: int = 20) -> str:
        for name in ("broker.out", "broker.log"):
            path = self.home / name
            if path.exists() and path.stat().st_size:
                text = path.read_text(errors="replace").splitlines()
                errors = [line for line in text if " ERROR " in line or "Exception" in line]
                return "\n".join((errors or text)[-lines:])
        return "(no broker log)"


def _alive(pid: int) -> bool:
    try:
        # Reap it if it is our child (authtrail up started it).
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return False

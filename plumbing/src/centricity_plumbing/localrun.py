"""`make run`: the local infrastructure plus every service, until Ctrl-C.

Also used by the end-to-end tests, on other ports, to run the system as a newcomer would.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from centricity_plumbing.devusers import DEV_OIDC_CLIENT_ID, DEV_OIDC_CLIENT_SECRET, DEV_USERS
from centricity_plumbing.localinfra import (
    DEFAULT_KAFKA_PORT,
    DEFAULT_MONGO_PORT,
    DEFAULT_OIDC_PORT,
    DEFAULT_SMTP_PORT,
    DEFAULT_WEBHOOK_PORT,
    LOOPBACK,
    InfrastructureError,
    LocalInfrastructure,
)
from centricity_plumbing.settings import ENV_PREFIX

DEFAULT_SERVICES = {"ideas": 8101, "votes": 8102, "insights": 8103, "notifications": 8104, "portal": 8105}
# The portal calls these services' public APIs; it has no broker or store of its own.
PORTAL_UPSTREAMS = ("ideas", "votes", "insights", "notifications")
DEV_BUSINESS_UNITS: dict[str, dict[str, Any]] = {
    "retail": {"name": "Retail banking", "api_key": "dev-key-retail"},
    "wholesale": {"name": "Wholesale", "api_key": "dev-key-wholesale"},
    "support": {"name": "Customer support", "api_key": "dev-key-support"},
    "hq": {"name": "Group headquarters", "api_key": "dev-key-hq", "enterprise": True},
}
READY_TIMEOUT_S = 90.0
# Kafka does not say who produced a record: without this, anyone who reaches the local broker
# could act as any unit, `hq` launching enterprise campaigns included. Each unit signs its intake
# events with its development API key (printed in the banner), as in a deployment.
DEV_INTAKE_SIGNATURES = "required"
# Shared by the replicas of `make run`, so a session started on one is good on the others.
DEV_SESSION_SECRET = "dev-session-secret-not-for-production"
# Replica n (from 2) of a service listens on its port + (n - 1) * REPLICA_PORT_STEP.
REPLICA_PORT_STEP = 10


def replica_name(service: str, replica: int) -> str:
    return service if replica == 1 else f"{service}-{replica}"


def service_of(instance: str) -> str:
    """The service an instance runs: `insights-2` runs insights."""
    return instance.split("-", 1)[0]


def with_replicas(services: dict[str, int], replicas: int) -> dict[str, int]:
    """Each service `replicas` times, on one broker and one store, each on a port of its own."""
    return {
        replica_name(service, n): port + (n - 1) * REPLICA_PORT_STEP
        for service, port in services.items()
        for n in range(1, replicas + 1)
    }


@dataclass
class LocalSystem:
    """The local infrastructure and the services, each service a subprocess like in production."""

    infra: LocalInfrastructure
    services: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_SERVICES))
    business_units: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(DEV_BUSINESS_UNITS))
    _processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False)

    def url(self, service: str) -> str:
        return f"http://{LOOPBACK}:{self.services[service]}"

    def service_env(self, service: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        env.update(
            {
                f"{ENV_PREFIX}HTTP_PORT": str(self.services[service]),
                f"{ENV_PREFIX}KAFKA_BOOTSTRAP_SERVERS": self.infra.kafka_bootstrap,
                f"{ENV_PREFIX}MONGO_URL": self.infra.mongo_url,
                f"{ENV_PREFIX}BUSINESS_UNITS": json.dumps(self.business_units),
                f"{ENV_PREFIX}INTAKE_SIGNATURES": DEV_INTAKE_SIGNATURES,
                # Tansu holds a group's first join for half the session timeout.
                f"{ENV_PREFIX}KAFKA_SESSION_TIMEOUT_MS": "2000",
                f"{ENV_PREFIX}KAFKA_HEARTBEAT_INTERVAL_MS": "500",
                f"{ENV_PREFIX}SESSION_SECRET": DEV_SESSION_SECRET,
            }
        )
        if self.infra.smtp_port is not None:
            env[f"{ENV_PREFIX}SMTP_HOST"] = self.infra.smtp_host
            env[f"{ENV_PREFIX}SMTP_PORT"] = str(self.infra.smtp_port)
        if service_of(service) == "notifications":
            env[f"{ENV_PREFIX}PUBLIC_URL"] = self.url(service)
            # The local receiver is on loopback, which production refuses as a webhook target.
            env[f"{ENV_PREFIX}WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "true"
            if "ideas" in self.services:
                env[f"{ENV_PREFIX}ANSWER_BASE_URL"] = self.url("ideas")
        if service_of(service) == "portal":
            for upstream in PORTAL_UPSTREAMS:
                if upstream in self.services:
                    env[f"{ENV_PREFIX}{upstream.upper()}_URL"] = self.url(upstream)
        if self.infra.oidc_port is not None:
            env[f"{ENV_PREFIX}OIDC_ISSUER"] = self.infra.oidc_issuer
            env[f"{ENV_PREFIX}OIDC_CLIENT_ID"] = DEV_OIDC_CLIENT_ID
            env[f"{ENV_PREFIX}OIDC_CLIENT_SECRET"] = DEV_OIDC_CLIENT_SECRET
        return env

    def start(self) -> LocalSystem:
        self.infra.start()
        try:
            for service in self.services:
                self._start_service(service)
            for service in self.services:
                self._wait_ready(service)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for process in self._processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self._processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        self.infra.stop()

    def terminate_service(self, service: str, timeout: float = 30.0) -> int:
        """Stop a service as Kubernetes would, with SIGTERM; returns its exit code."""
        process = self._processes.pop(service)
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=timeout)

    def kill_service(self, service: str) -> None:
        """Stop a service at once, as a crash would."""
        process = self._processes.pop(service)
        process.kill()
        process.wait()

    def restart_service(self, service: str, wait_until_ready: bool = True) -> None:
        self._start_service(service)
        if wait_until_ready:
            self._wait_ready(service)

    def is_running(self, service: str) -> bool:
        process = self._processes.get(service)
        return process is not None and process.poll() is None

    def pid(self, service: str) -> int:
        return self._processes[service].pid

    def log_path(self, service: str) -> Path:
        return self.infra.run_dir / f"{service}.log"

    def failed_service(self) -> str | None:
        for service, process in self._processes.items():
            if process.poll() is not None:
                return service
        return None

    def _start_service(self, service: str) -> None:
        if self.is_running(service):
            raise InfrastructureError(f"{service} is already running (pid {self.pid(service)})")
        log_file = self.log_path(service).open("ab")
        self._processes[service] = subprocess.Popen(
            [sys.executable, "-m", f"centricity_{service_of(service)}.main"],
            env=self.service_env(service),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log_file.close()

    def _wait_ready(self, service: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._processes[service].poll() is not None:
                raise InfrastructureError(f"{service} exited; see {self.log_path(service)}")
            try:
                with urllib.request.urlopen(f"{self.url(service)}/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise InfrastructureError(
            f"{service} not ready in {READY_TIMEOUT_S:.0f} s; see {self.log_path(service)}"
        )


def banner(system: LocalSystem) -> str:
    lines = ["", "Centricity is running.", ""]
    portals = [system.url(i) for i in system.services if service_of(i) == "portal"]
    if portals:
        lines += [
            f"  Portal    {'  '.join(portals)}   (customers; staff: {portals[0]}/console)",
            "",
        ]
    for service in system.services:
        if service_of(service) == "portal":
            continue
        url = system.url(service)
        lines.append(f"  {service:<14} {url}   docs {url}/docs   events {url}/asyncapi")
    dashboards = [f"{system.url(i)}/dashboard" for i in system.services if service_of(i) == "insights"]
    if dashboards:
        lines += ["", f"  Dashboard {'  '.join(dashboards)}   (live; `make demo` posts a day of activity)"]
    lines += [
        "",
        f"  Kafka     {system.infra.kafka_bootstrap}   (Tansu, in memory)",
        f"  MongoDB   {system.infra.mongo_url}   (nx-27017, data in {system.infra.mongo_data_dir})",
        f"  Logs      {system.infra.run_dir}/*.log",
    ]
    if system.infra.smtp_port is not None:
        lines.append(
            f"  Mail      smtp://{system.infra.smtp_host}:{system.infra.smtp_port}   "
            f"(aiosmtpd: each message kept as a file in {system.infra.maildir}/new)"
        )
    if system.infra.webhook_port is not None:
        lines.append(
            f"  Webhooks  {system.infra.webhook_url}   (a receiver to register as an endpoint; "
            f"it keeps each request in {system.infra.webhook_log})"
        )
    lines += [
        "",
        "  Business units and their API keys (header X-API-Key). Kafka intake events must be signed",
        "  with the unit's key: centricity-signature: sha256=<HMAC-SHA256 of the record value>",
        "  (README: Signing events):",
    ]
    lines += [f"    {unit:<10} {cfg['api_key']}" for unit, cfg in system.business_units.items()]
    if system.infra.oidc_port is not None:
        lines += [
            "",
            f"  Sign-in   {system.infra.oidc_issuer}   (OpenID provider: oidc-provider-mock; pick a user)",
            "  Development users (README: Sign-in and roles):",
        ]
        lines += [f"    {user['sub']:<20} {user['name']}" for user in DEV_USERS]
    lines += ["", "Press Ctrl-C to stop everything.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Centricity locally.")
    parser.add_argument("--data-dir", type=Path, default=Path(".local"))
    parser.add_argument("--kafka-port", type=int, default=DEFAULT_KAFKA_PORT)
    parser.add_argument("--mongo-port", type=int, default=DEFAULT_MONGO_PORT)
    parser.add_argument("--oidc-port", type=int, default=DEFAULT_OIDC_PORT)
    parser.add_argument("--smtp-port", type=int, default=DEFAULT_SMTP_PORT)
    parser.add_argument("--webhook-port", type=int, default=DEFAULT_WEBHOOK_PORT)
    parser.add_argument(
        "--replicas", type=int, default=1, help="how many processes of each service (consumer groups share)"
    )
    args = parser.parse_args(argv)

    system = LocalSystem(
        LocalInfrastructure(
            kafka_port=args.kafka_port,
            mongo_port=args.mongo_port,
            oidc_port=args.oidc_port,
            smtp_port=args.smtp_port,
            webhook_port=args.webhook_port,
            mongo_data_dir=args.data_dir / "mongo",
            run_dir=args.data_dir / "run",
        ),
        services=with_replicas(DEFAULT_SERVICES, max(1, args.replicas)),
    )
    stopping = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    say("Starting Kafka (Tansu), MongoDB (nx-27017) and the services...")
    try:
        system.start()
    except InfrastructureError as error:
        print(f"Could not start: {error}", file=sys.stderr)
        return 1
    say(banner(system))
    try:
        while not stopping:
            failed = system.failed_service()
            if failed:
                say(f"{failed} stopped unexpectedly; see {system.log_path(failed)}")
                return 1
            time.sleep(0.5)
    finally:
        # Stop first: a closed stdout (e.g. `make run | tee` after Ctrl-C) must not leave servers behind.
        system.stop()
        say("Stopped.")
    return 0


def say(text: str) -> None:
    with contextlib.suppress(BrokenPipeError, OSError):
        print(text, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())

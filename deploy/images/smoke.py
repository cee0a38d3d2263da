"""Start each built service image against a local Kafka (Tansu) and MongoDB (nx-27017).

Run by `make images-smoke` after `make images`. For every service it checks that the image's
entry point starts as the non-root user, serves /health and becomes ready (/ready answers 200 once
the broker and store are reachable). (`buildah run` kills rather than forwards SIGTERM, so graceful
shutdown is covered by the services' own SIGTERM test, not here.) Containers run with `buildah run`
(chroot isolation, host network), the daemonless way that works on this kind of machine.
"""

from __future__ import annotations

import json
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from centricity_plumbing.localinfra import LocalInfrastructure, free_port

TAG = "0.1.0"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_for(url: str, status: int, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        try:
            code, body = get(url)
            if code == status:
                return body
            last = (code, body)
        except OSError as error:
            last = error
        time.sleep(0.5)
    raise SystemExit(f"{url} did not answer {status} within {seconds}s (last: {last})")


def image_config(image: str) -> dict[str, object]:
    out = subprocess.run(["buildah", "inspect", "--type", "image", image], capture_output=True, check=True)
    config: dict[str, object] = json.loads(out.stdout)["Docker"]["config"]
    return config


def smoke(service: str, infra: LocalInfrastructure) -> None:
    image = f"localhost/centricity-{service}:{TAG}"
    config = image_config(image)
    assert config["User"] == "10001:10001", config["User"]
    entrypoint = [str(part) for part in config["Entrypoint"]]  # type: ignore[attr-defined]
    port = free_port()
    container = subprocess.run(
        ["buildah", "from", "--pull=never", image], capture_output=True, text=True, check=True
    ).stdout.strip()
    env = {
        "CENTRICITY_HTTP_PORT": str(port),
        "CENTRICITY_KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap,
        "CENTRICITY_MONGO_URL": infra.mongo_url,
    }
    cmd = ["buildah", "run", "--isolation", "chroot", "--network", "host", "--user", "10001:10001"]
    cmd += [arg for name, value in env.items() for arg in ("--env", f"{name}={value}")]
    started = time.monotonic()
    process = subprocess.Popen([*cmd, container, "--", *entrypoint])
    try:
        health = wait_for(f"http://127.0.0.1:{port}/health", 200, 60)
        print(f"{service}: /health 200 {health} after {time.monotonic() - started:.1f}s", flush=True)
        ready = wait_for(f"http://127.0.0.1:{port}/ready", 200, 60)
        print(f"{service}: /ready 200 {ready} after {time.monotonic() - started:.1f}s", flush=True)
        whoami = subprocess.run(
            ["buildah", "run", "--isolation", "chroot", "--user", "10001:10001", container, "--", "id", "-u"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert whoami == "10001", whoami
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
            print(f"{service}: stopped (exit code {code})", flush=True)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        finally:
            subprocess.run(["buildah", "rm", container], capture_output=True, check=False)


def main() -> None:
    services = sys.argv[1:] or ["ideas", "votes", "insights", "notifications"]
    run_dir = pathlib.Path(tempfile.mkdtemp(prefix="centricity-smoke-"))
    with LocalInfrastructure(kafka_port=free_port(), mongo_port=free_port(), run_dir=run_dir) as infra:
        for service in services:
            smoke(service, infra)
    print("all images started, served /health and /ready", flush=True)


if __name__ == "__main__":
    main()

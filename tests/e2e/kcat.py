"""Debian's kcat, a Kafka client no one here wrote, as a business unit's system would use it.

Debian's kcat links librdkafka 2.0, which cannot talk to Tansu; the newer librdkafka inside
the confluent-kafka wheel can, so kcat is run with that library on its search path.

`make run` requires intake events to be signed with their unit's development key. kcat puts the
same headers on every record of a call, so a signed event takes a kcat call of its own; a burst
of thousands goes in with confluent-kafka instead, which sets headers per record.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import confluent_kafka

from centricity_plumbing.localrun import DEV_BUSINESS_UNITS

SIGNATURE_HEADER = "centricity-signature"


def signature(value: str) -> str | None:
    """The signature the sending unit's system puts on an intake event, with its `make run` key;
    None for a record that names no configured unit, which is refused for what it is."""
    try:
        unit = json.loads(value).get("businessunit")
    except (ValueError, AttributeError):
        return None
    config = DEV_BUSINESS_UNITS.get(unit) if isinstance(unit, str) else None
    if config is None:
        return None
    digest = hmac.new(config["api_key"].encode(), value.encode(), hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def produce_signed_burst(bootstrap: str, topic: str, keyed_lines: list[tuple[str, str]]) -> None:
    """Produce many signed intake events in order, each with its own signature header."""
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "enable.idempotence": False})
    for key, value in keyed_lines:
        signed = signature(value)
        headers: list[tuple[str, str | bytes | None]] = [(SIGNATURE_HEADER, signed)] if signed else []
        producer.produce(topic, value=value.encode(), key=key.encode(), headers=headers)
        producer.poll(0)
    undelivered = producer.flush(60)
    if undelivered:
        raise RuntimeError(f"{undelivered} records to {topic} were not delivered")


def librdkafka_dir(workdir: Path) -> Path:
    libs = Path(confluent_kafka.__file__).resolve().parent.parent / "confluent_kafka.libs"
    library = next(libs.glob("librdkafka-*.so.1"))
    folder = workdir / "librdkafka"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "librdkafka.so.1"
    if not link.exists():
        link.symlink_to(library)
    return folder


@dataclass
class Kcat:
    bootstrap: str
    library_dir: Path

    @staticmethod
    def available() -> bool:
        return shutil.which("kcat") is not None

    def _run(self, args: list[str], stdin: str | None = None, timeout: float = 30) -> str:
        result = subprocess.run(
            ["kcat", "-b", self.bootstrap, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={"LD_LIBRARY_PATH": str(self.library_dir), "PATH": "/usr/bin:/bin"},
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"kcat {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result.stdout

    def produce_lines(self, topic: str, keyed_lines: list[tuple[str, str]]) -> None:
        """Produce one message per line, `key:value`, in order."""
        text = "".join(f"{key}:{value}\n" for key, value in keyed_lines)
        self._run(["-P", "-t", topic, "-K:", "-l", "/dev/stdin"], stdin=text)

    def produce_signed(self, topic: str, keyed_lines: list[tuple[str, str]]) -> None:
        """Produce intake events in order, each signed with its unit's key, one kcat call each."""
        for key, value in keyed_lines:
            signed = signature(value)
            headers = ["-H", f"{SIGNATURE_HEADER}={signed}"] if signed else []
            self._run(["-P", "-t", topic, "-K:", *headers, "-l", "/dev/stdin"], stdin=f"{key}:{value}\n")

    def consume_all(self, topic: str) -> list[dict[str, Any]]:
        """Every message on `topic` now, as kcat's JSON envelopes, with headers as a dict."""
        out = self._run(
            ["-C", "-t", topic, "-o", "beginning", "-e", "-q", "-J", "-X", "fetch.wait.max.ms=50"]
        )
        messages = [json.loads(line) for line in out.splitlines() if line.strip()]
        for message in messages:
            flat = message.get("headers") or []
            message["headers"] = dict(zip(flat[::2], flat[1::2], strict=True))
        return messages

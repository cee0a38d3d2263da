"""Debian's kcat, a Kafka client no one here wrote, as a business unit's system would use it.

Debian's kcat links librdkafka 2.0, which cannot talk to Tansu; the newer librdkafka inside
the confluent-kafka wheel can, so kcat is run with that library on its search path.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import confluent_kafka


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

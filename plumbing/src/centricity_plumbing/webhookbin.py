"""A local webhook receiver for `make run` and the tests: a real HTTP server (PyPI
`pytest-httpserver`, on werkzeug) that answers every POST and keeps each request it got, headers
and body, one JSON line each, in a file, so a person or a test can see what was delivered.

Paths choose the answer, to try senders against bad receivers: `/status/<code>` answers that
status, `/slow/<seconds>` answers 204 after waiting, anything else 204.

    python -m centricity_plumbing.webhookbin --port 9500 --log .local/run/webhooks.jsonl
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

MAX_SLOW_S = 120.0


def received(log: Path) -> list[dict[str, Any]]:
    """The requests a receiver kept, oldest first."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


class Receiver:
    def __init__(self, log: Path) -> None:
        self.log = log
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        kept = {
            "at": time.time(),
            "method": request.method,
            "path": request.path,
            "headers": {k.lower(): v for k, v in request.headers.items()},
            "body": request.get_data(as_text=True),
        }
        with self.lock, self.log.open("a") as out:
            out.write(json.dumps(kept) + "\n")
        parts = request.path.strip("/").split("/")
        if len(parts) >= 2 and parts[0] == "status" and parts[1].isdigit():
            return Response(status=int(parts[1]))
        if len(parts) >= 2 and parts[0] == "slow":
            time.sleep(min(MAX_SLOW_S, float(parts[1] or 0)))
        return Response(status=204)


def serve(host: str, port: int, log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    server = HTTPServer(host=host, port=port, threaded=True)
    server.no_handler_status_code = 204
    server.expect_request(re.compile(".*")).respond_with_handler(Receiver(log))
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.start()
    print(f"webhook receiver on http://{host}:{port}, keeping requests in {log}", flush=True)
    stopping.wait()
    server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local webhook receiver that keeps what it gets.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9500)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.log)


if __name__ == "__main__":
    main()

"""Two processes of every service on one broker and one store, as `make run REPLICAS=2` starts them (#13).

Ideas are posted over HTTP to both ideas replicas, a burst of signed votes goes in over Kafka, and one
votes replica is SIGKILLed in the middle of it. Every vote must count once, and the live stream
of each insights replica must show every idea, whichever replica applied its facts.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from centricity_contracts.topics import VOTES_INTAKE
from centricity_plumbing.localinfra import LocalInfrastructure, free_port
from centricity_plumbing.localrun import DEV_BUSINESS_UNITS, LocalSystem, replica_name
from tests.e2e.kcat import produce_signed_burst
from tests.e2e.test_business_unit_journey import vote_cast

IDEAS = 12
VOTERS = 150
TIMEOUT_S = 180.0
SERVICES = ("ideas", "votes", "insights")
RETAIL_KEY = {"X-API-Key": DEV_BUSINESS_UNITS["retail"]["api_key"]}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    data = tmp_path_factory.mktemp("replicas")
    infra = LocalInfrastructure(
        kafka_port=free_port(),
        mongo_port=free_port(),
        oidc_port=free_port(),
        mongo_data_dir=data / "mongo",
        run_dir=data / "run",
    )
    services = {replica_name(service, n): free_port() for service in SERVICES for n in (1, 2)}
    running = LocalSystem(infra, services=services).start()
    try:
        yield running
    finally:
        running.stop()


class StreamWatcher(threading.Thread):
    """A dashboard on one insights replica: the idea ids its enterprise stream has shown."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.ideas: dict[str, dict[str, Any]] = {}
        self.connected = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(5, read=None)) as client,
            client.stream("GET", f"{self.url}/stream", headers=RETAIL_KEY) as answer,
        ):
            self.connected.set()
            event = ""
            for line in answer.iter_lines():
                if self.stop.is_set():
                    return
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event == "idea":
                    idea = json.loads(line.split(":", 1)[1])
                    self.ideas[idea["idea_id"]] = idea


def post_idea(system: LocalSystem, replica: str, reference: str) -> str:
    answer = httpx.post(
        f"{system.url(replica)}/ideas",
        json={
            "reference": reference,
            "title": f"Replicated idea {reference}",
            "author": {"customer_id": f"author-{reference}", "customer_type": "external"},
        },
        headers=RETAIL_KEY,
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["idea_id"])


def errors_logged(system: LocalSystem) -> dict[str, list[str]]:
    logs = {instance: system.log_path(instance).read_text() for instance in system.services}
    return {
        instance: [line for line in text.splitlines() if " ERROR " in line]
        for instance, text in logs.items()
        if " ERROR " in text
    }


def test_two_replicas_of_each_service_count_once_and_stream_everything(system: LocalSystem) -> None:
    watchers = [StreamWatcher(system.url(replica_name("insights", n))) for n in (1, 2)]
    for watcher in watchers:
        watcher.start()
        assert watcher.connected.wait(10)
    run = uuid.uuid4().hex[:8]
    ideas = [post_idea(system, replica_name("ideas", 1 + n % 2), f"{run}-{n}") for n in range(IDEAS)]
    votes = [(idea, vote_cast(idea, f"{run}-v{v}", 1)) for v in range(VOTERS) for idea in ideas]
    produce_signed_burst(system.infra.kafka_bootstrap, VOTES_INTAKE, votes)
    time.sleep(0.5)
    system.kill_service(replica_name("votes", 2))

    deadline = time.monotonic() + TIMEOUT_S
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        answer = httpx.get(
            f"{system.url('insights-2')}/ideas/top",
            params={"businessunit": "retail", "limit": 100},
            headers=RETAIL_KEY,
            timeout=10,
        )
        counts = {i["idea_id"]: i["voters"] for i in answer.json() if i["idea_id"] in ideas}
        if len(counts) == IDEAS and all(v >= VOTERS for v in counts.values()):
            break
        time.sleep(0.5)
    system.restart_service(replica_name("votes", 2))
    assert counts == dict.fromkeys(ideas, VOTERS), "every vote counted once"

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all(
        all(w.ideas.get(i, {}).get("voters") == VOTERS for i in ideas) for w in watchers
    ):
        time.sleep(0.2)
    for watcher in watchers:
        watcher.stop.set()
        shown = {i: watcher.ideas.get(i, {}).get("voters") for i in ideas}
        assert shown == dict.fromkeys(ideas, VOTERS), f"{watcher.url}/stream missed changes"
    applied_by = [
        instance
        for instance in ("insights", "insights-2")
        if "facts applied to" in system.log_path(instance).read_text()
    ]
    print(f"facts applied by {applied_by}")
    assert errors_logged(system) == {}

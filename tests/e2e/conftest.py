"""End-to-end fixtures: the whole system started as `make run` starts it, on free ports."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from centricity_plumbing.localinfra import LocalInfrastructure, free_port
from centricity_plumbing.localrun import LocalSystem
from tests.e2e.kcat import Kcat, librdkafka_dir

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    data = tmp_path_factory.mktemp("system")
    infra = LocalInfrastructure(
        kafka_port=free_port(),
        mongo_port=free_port(),
        oidc_port=free_port(),
        smtp_port=free_port(),
        webhook_port=free_port(),
        mongo_data_dir=data / "mongo",
        run_dir=data / "run",
    )
    services = {
        "ideas": free_port(),
        "votes": free_port(),
        "insights": free_port(),
        "notifications": free_port(),
        "portal": free_port(),
    }
    running = LocalSystem(infra, services=services).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def kcat(system: LocalSystem, tmp_path_factory: pytest.TempPathFactory) -> Kcat:
    if not Kcat.available():
        if os.environ.get("CI"):
            pytest.fail("kcat is missing: .ci/run installs it with apt-get")
        pytest.skip("kcat is not installed (apt-get install kcat)")
    return Kcat(system.infra.kafka_bootstrap, librdkafka_dir(Path(tmp_path_factory.mktemp("kcat"))))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it with apt-get")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update"],
        )
        yield launched
        launched.close()

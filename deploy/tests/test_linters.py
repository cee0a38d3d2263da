"""checkov finds nothing but the accepted findings; hadolint passes on every Dockerfile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import K8S, REPO, SERVICES

BIN = Path(sys.executable).parent


def checkov_failures() -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(BIN / "checkov"), "-d", str(K8S), "--framework", "kustomize", "--skip-download",
         "--quiet", "--compact", "-o", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode in (0, 1), out.stderr
    reports = json.loads(out.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert sum(r["summary"]["passed"] for r in reports) > 100, "checkov checked next to nothing"
    return [f for r in reports for f in r["results"]["failed_checks"]]


def test_checkov_finds_only_what_the_skip_file_accepts_with_a_reason() -> None:
    skips = yaml.safe_load((REPO / "deploy" / "checkov-skips.yaml").read_text())
    assert all(s["reason"].strip() for s in skips)

    def accepted_by(failure: dict[str, Any]) -> dict[str, Any] | None:
        for skip in skips:
            if skip["id"] == failure["check_id"] and any(
                failure["file_path"].startswith(p) for p in skip.get("paths", ["/"])
            ):
                return skip
        return None

    failures = checkov_failures()
    unexpected = sorted(
        {(f["check_id"], f["check_name"], f["file_path"]) for f in failures if accepted_by(f) is None}
    )
    assert not unexpected, unexpected
    used = {id(accepted_by(f)) for f in failures}
    assert not [s["id"] for s in skips if id(s) not in used], "stale entries in checkov-skips.yaml"


@pytest.mark.parametrize("service", SERVICES)
def test_hadolint_passes_on_the_dockerfile(service: str) -> None:
    dockerfile = REPO / "services" / service / "Dockerfile"
    out = subprocess.run(
        [str(BIN / "hadolint"), "--failure-threshold", "info", str(dockerfile)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def test_hadolint_can_fail() -> None:
    out = subprocess.run(
        [str(BIN / "hadolint"), "-"], input="FROM debian\nRUN apt-get install curl\n",
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode != 0
    assert "DL3008" in out.stdout


@pytest.mark.parametrize("service", SERVICES)
def test_each_image_installs_only_its_own_service_and_runs_as_non_root(service: str) -> None:
    text = (REPO / "services" / service / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE" in text
    assert text.count("FROM ${BASE_IMAGE}") == 2
    assert f"centricity-{service} \\" in text or f"centricity-{service}\n" in text
    others = [s for s in SERVICES if s != service]
    assert not any(f"centricity-{o}" in text or f"centricity_{o}" in text for o in others)
    assert "[local]" not in text
    assert "USER 10001:10001" in text
    assert f'ENTRYPOINT ["python3", "-m", "centricity_{service}.main"]' in text

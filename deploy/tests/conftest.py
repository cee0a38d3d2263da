"""Rendering of the kustomizations, shared by the deployment checks."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
SERVICES = ("ideas", "votes", "insights", "notifications")


@functools.cache
def render(path: str) -> tuple[dict[str, Any], ...]:
    """`kubectl kustomize` of a folder under deploy/k8s, as a tuple of objects."""
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is needed to render deploy/k8s (CI installs it)")
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S / path)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, f"kubectl kustomize {path} failed:\n{out.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def of_kind(objects: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}

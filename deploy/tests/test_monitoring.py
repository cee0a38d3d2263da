"""The monitoring component: alerts that promtool parses and that fire on the series they are
about (alerts-test.yaml), a dashboard whose every query parses, and each alert documented."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import K8S, REPO, SERVICES, of_kind, render

MONITORING = K8S / "components" / "monitoring"
ALERT_TESTS = Path(__file__).parent / "alerts-test.yaml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        needed = "promtool checks the alerts (apt-get install --no-install-recommends prometheus)"
        if os.environ.get("CI"):
            pytest.fail(needed)  # .ci/run installs it
        pytest.skip(needed)
    return subprocess.run(["promtool", *args], capture_output=True, text=True, check=False)


def rule_groups() -> list[dict[str, Any]]:
    (rule,) = of_kind(render("overlays/prod"), "PrometheusRule").values()
    return list(rule["spec"]["groups"])


def alerts() -> list[dict[str, Any]]:
    return [r for group in rule_groups() for r in group["rules"] if "alert" in r]


def test_prod_scrapes_every_service_and_lets_only_prometheus_in_for_it() -> None:
    objects = render("overlays/prod")
    (monitor,) = of_kind(objects, "PodMonitor").values()
    (names,) = [e["values"] for e in monitor["spec"]["selector"]["matchExpressions"]]
    assert sorted(names) == sorted(f"centricity-{s}" for s in SERVICES)
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    policy = of_kind(objects, "NetworkPolicy")["centricity-allow-prometheus"]["spec"]
    assert policy["ingress"][0]["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]
    assert policy["ingress"][0]["ports"] == [{"port": "http", "protocol": "TCP"}]
    dashboard = of_kind(objects, "ConfigMap")["centricity-grafana-dashboard"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_every_alert_expression_passes_promtool(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups()}))
    checked = promtool("check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in checked.stdout


def test_each_alert_fires_on_its_series_and_not_below_its_threshold(tmp_path: Path) -> None:
    groups = copy.deepcopy(rule_groups())
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)  # checked below: here only when and for what it fires
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    tested = promtool("test", "rules", str(tmp_path / ALERT_TESTS.name))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    covered = set(re.findall(r"alertname: (\w+)", ALERT_TESTS.read_text()))
    assert covered == {a["alert"] for a in alerts()}, "every alert has a test"


def test_the_alert_tests_can_fail(tmp_path: Path) -> None:
    """A threshold moved by a typo is caught."""
    groups = copy.deepcopy(rule_groups())
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)
            rule["expr"] = rule["expr"].replace("> 10000", "> 100000")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    assert promtool("test", "rules", str(tmp_path / ALERT_TESTS.name)).returncode != 0


def test_each_alert_says_what_happened_how_bad_and_is_documented() -> None:
    readme = (REPO / "README.md").read_text()
    for alert in alerts():
        assert alert["labels"]["severity"] in ("warning", "critical"), alert["alert"]
        assert alert["annotations"]["summary"], alert["alert"]
        assert alert["annotations"]["description"], alert["alert"]
        assert f"`{alert['alert']}`" in readme, f"{alert['alert']} is not in the README's alert table"


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= len(dashboard["panels"])
    # As recording rules, with the dashboard's variable filled in, promtool parses each query.
    records = [
        {"record": f"dashboard:query_{n}", "expr": expr.replace("$namespace", "centricity")}
        for n, expr in enumerate(exprs)
    ]
    rules = tmp_path / "dashboard.yaml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    checked = promtool("check", "rules", str(rules))
    assert checked.returncode == 0, checked.stdout + checked.stderr

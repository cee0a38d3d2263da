"""Every kustomization renders, validates strictly, and says what the deployment promises."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from conftest import K8S, OVERLAYS, REPO, SERVICES, of_kind, render

KUBERNETES_VERSION = "1.32.0"
CRD_DIR = REPO / "deploy" / "tools" / "crds"
SIGN_IN_SECRETS = (
    "CENTRICITY_OIDC_CLIENT_SECRET",
    "CENTRICITY_SESSION_SECRET",
    "CENTRICITY_PSEUDONYM_SECRET",
)
# Signs the links in mail that customers answer without signing in: made by notifications,
# verified by ideas, and on no other service.
ANSWER_LINK_SERVICES = {"ideas", "notifications"}
RENDERED = ("base", *(f"overlays/{o}" for o in OVERLAYS))


def load_topics() -> Any:
    """contracts' topics.py, loaded by path: it has no dependencies, and the contracts package
    itself is not installed in the validation tools' venv."""
    path = REPO / "contracts" / "src" / "centricity_contracts" / "topics.py"
    spec = importlib.util.spec_from_file_location("centricity_topics", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """A CRD's structural schema as JSON Schema: unknown fields are errors unless preserved."""
    schema = {k: v for k, v in schema.items() if not k.startswith("x-kubernetes")} | (
        {"x-preserve": True} if schema.get("x-kubernetes-preserve-unknown-fields") else {}
    )
    if "properties" in schema:
        schema["properties"] = {k: strict(v) for k, v in schema["properties"].items()}
        if not schema.pop("x-preserve", False):
            schema.setdefault("additionalProperties", False)
    schema.pop("x-preserve", None)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            schema[key] = strict(schema[key])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            schema[key] = [strict(s) for s in schema[key]]
    return schema


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            for version in crd["spec"]["versions"]:
                if version.get("served", True):
                    api_version = f"{crd['spec']['group']}/{version['name']}"
                    schemas[(api_version, crd["spec"]["names"]["kind"])] = strict(
                        version["schema"]["openAPIV3Schema"]
                    )
    return schemas


SCHEMAS = crd_schemas()
CUSTOM_GROUPS = {api.split("/")[0] for api, _ in SCHEMAS}


def is_custom(obj: dict[str, Any]) -> bool:
    return "/" in obj["apiVersion"] and obj["apiVersion"].split("/")[0] in CUSTOM_GROUPS


def custom_errors(obj: dict[str, Any]) -> list[str]:
    key = (obj["apiVersion"], obj["kind"])
    assert key in SCHEMAS, f"no schema for {key} in {CRD_DIR}"
    validator = jsonschema.Draft7Validator(SCHEMAS[key])
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]


@pytest.mark.parametrize("path", RENDERED)
def test_every_kustomization_renders(path: str) -> None:
    assert of_kind(render(path), "Deployment").keys() >= {f"centricity-{s}" for s in SERVICES}


@pytest.mark.parametrize("path", RENDERED)
def test_built_in_objects_pass_kubernetes_validate_strict(path: str) -> None:
    built_in = [o for o in render(path) if not is_custom(o)]
    assert built_in
    for obj in built_in:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("path", RENDERED)
def test_custom_resources_match_their_crd_schemas(path: str) -> None:
    for obj in (o for o in render(path) if is_custom(o)):
        assert not custom_errors(obj), (obj["kind"], obj["metadata"]["name"], custom_errors(obj))


def test_the_checks_can_fail() -> None:
    """A typo or a wrong value in a custom or a built-in resource is caught."""
    objects = render("overlays/prod")
    topic = copy.deepcopy(next(iter(of_kind(objects, "KafkaTopic").values())))
    topic["spec"]["partiton"] = 3
    assert any("partiton" in e for e in custom_errors(topic))
    user = copy.deepcopy(of_kind(objects, "KafkaUser")["centricity-ideas"])
    user["spec"]["authorization"]["acls"][0]["operations"] = ["Writ"]
    assert custom_errors(user)
    scaled = copy.deepcopy(of_kind(objects, "ScaledObject")["centricity-votes"])
    del scaled["spec"]["scaleTargetRef"]
    assert custom_errors(scaled)
    deployment = copy.deepcopy(of_kind(objects, "Deployment")["centricity-ideas"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_topics_are_those_of_all_topics(overlay: str) -> None:
    topics = load_topics()
    kafka_topics = of_kind(render(f"overlays/{overlay}"), "KafkaTopic").values()
    rendered = {t["spec"]["topicName"]: t for t in kafka_topics}
    assert set(rendered) == {spec.name for spec in topics.ALL_TOPICS}
    for spec in topics.ALL_TOPICS:
        topic = rendered[spec.name]
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "centricity"
        assert topic["spec"]["partitions"] == spec.partitions, spec.name
        for key, value in spec.topic_config().items():
            assert topic["spec"]["config"][key] == value, (spec.name, key)
        policy = topic["spec"]["config"]["cleanup.policy"]
        assert (policy == "compact") is spec.compacted, spec.name
        replicas = 1 if overlay == "dev" else 3
        assert topic["spec"]["replicas"] == replicas
        assert int(topic["spec"]["config"]["min.insync.replicas"]) == (1 if overlay == "dev" else 2)
    # Facts are kept for replay: insights (or a new consumer) rebuilds from the beginning.
    for fact in (topics.IDEAS_EVENTS, topics.VOTES_EVENTS):
        assert rendered[fact]["spec"]["config"]["retention.ms"] == "-1"
    assert int(rendered[topics.IDEAS_INTAKE]["spec"]["config"]["retention.ms"]) >= 7 * 24 * 3600 * 1000
    for intake in (topics.VOTES_INTAKE, topics.NOTIFICATIONS_INTAKE):
        assert int(rendered[intake]["spec"]["config"]["retention.ms"]) >= 7 * 24 * 3600 * 1000, intake
    # Notifications carry customers' names and signed answer links: kept a while, not forever.
    retention = int(rendered[topics.NOTIFICATIONS]["spec"]["config"]["retention.ms"])
    assert 7 * 24 * 3600 * 1000 <= retention <= 30 * 24 * 3600 * 1000


def acls(user: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    return {
        (res["type"], res["name"], res.get("patternType", "literal"), op)
        for rule in user["spec"]["authorization"]["acls"]
        for res in [rule["resource"]]
        for op in rule["operations"]
        if rule.get("type", "allow") == "allow"
    }


SERVICE_TOPICS = {
    "ideas": (
        {"ideas.intake.v1", "ideas.events.v1", "votes.events.v1"},
        {"ideas.events.v1", "ideas.intake.v1.dlq"},
    ),
    "votes": ({"votes.intake.v1", "ideas.events.v1"}, {"votes.events.v1", "votes.intake.v1.dlq"}),
    "insights": (
        {"ideas.events.v1", "votes.events.v1", "notifications.v1"},
        {
            "insights.ideas.v1",
            "insights.units.v1",
            "ideas.events.v1.dlq",
            "votes.events.v1.dlq",
            "notifications.v1.dlq",
        },
    ),
    "notifications": (
        {"notifications.intake.v1", "ideas.events.v1", "votes.events.v1"},
        {"notifications.v1", "notifications.intake.v1.dlq", "ideas.events.v1.dlq", "votes.events.v1.dlq"},
    ),
}


# The (topic, consumer group) pairs whose lag drives each service's scaling: the main group's
# topics, and for notifications also its fan-out on idea and vote facts, in groups of their own.
SCALED_ON_LAG_OF = {
    "ideas": {("ideas.intake.v1", "centricity-ideas")},
    "votes": {("votes.intake.v1", "centricity-votes")},
    "insights": {("ideas.events.v1", "centricity-insights"), ("votes.events.v1", "centricity-insights")},
    "notifications": {
        ("notifications.intake.v1", "centricity-notifications"),
        ("ideas.events.v1", "centricity-notifications-ideas"),
        ("votes.events.v1", "centricity-notifications-votes"),
    },
}

# One consumer group per subscriber (see consumer_options in centricity_plumbing.broker).
SERVICE_GROUPS = {
    "ideas": {"centricity-ideas", "centricity-ideas-duplicates", "centricity-ideas-voters"},
    "votes": {"centricity-votes", "centricity-votes-ideas"},
    "insights": {"centricity-insights"},
    "notifications": {
        "centricity-notifications",
        "centricity-notifications-ideas",
        "centricity-notifications-votes",
    },
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_reads_and_writes_only_its_own_topics(overlay: str) -> None:
    users = of_kind(render(f"overlays/{overlay}"), "KafkaUser")
    assert set(SERVICE_TOPICS) == set(SERVICE_GROUPS) == set(SERVICES)
    for service, (reads, writes) in SERVICE_TOPICS.items():
        user = users[f"centricity-{service}"]
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        assert user["spec"]["authorization"]["type"] == "simple"
        expected = (
            {("topic", t, "literal", op) for t in reads for op in ("Read", "Describe")}
            | {("topic", t, "literal", op) for t in writes for op in ("Write", "Describe")}
            | {("group", g, "literal", op) for g in SERVICE_GROUPS[service] for op in ("Read", "Describe")}
        )
        assert acls(user) == expected, service


def test_a_business_unit_writes_intake_and_reads_insights_only() -> None:
    users = of_kind(render("overlays/dev"), "KafkaUser")
    bu = users["centricity-bu-retail"]
    granted = acls(bu)
    writes = {name for kind, name, _, op in granted if kind == "topic" and op == "Write"}
    reads = {name for kind, name, _, op in granted if kind == "topic" and op == "Read"}
    assert writes == {"ideas.intake.v1", "votes.intake.v1", "notifications.intake.v1"}
    # Not notifications.v1: it holds every unit's customers and their signed answer links.
    assert reads == {"insights.ideas.v1", "insights.units.v1"}
    assert {op for *_, op in granted} <= {"Read", "Write", "Describe"}
    assert {(kind, pattern) for kind, _, pattern, _ in granted if kind == "group"} == {("group", "prefix")}


@pytest.mark.parametrize("path", RENDERED)
def test_each_service_is_deployed_hardened_with_probes_and_secrets_by_reference(path: str) -> None:
    objects = render(path)
    assert not of_kind(objects, "Secret"), "Secrets are referenced, never rendered"
    deployments = of_kind(objects, "Deployment")
    accounts = of_kind(objects, "ServiceAccount")
    services = of_kind(objects, "Service")
    config_maps = {name.rsplit("-", 1)[0] for name in of_kind(objects, "ConfigMap")}
    for service in SERVICES:
        name = f"centricity-{service}"
        pod = deployments[name]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert pod["serviceAccountName"] == name
        assert accounts[name]["automountServiceAccountToken"] is False
        assert pod["automountServiceAccountToken"] is False
        assert services[name]["spec"]["selector"] == {"app.kubernetes.io/name": name}
        assert name in config_maps
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
        assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
        assert pod["terminationGracePeriodSeconds"] >= 30
        assert "preStop" in container["lifecycle"]
        env = {e["name"]: e for e in container["env"]}
        secrets = (
            *SIGN_IN_SECRETS,
            "CENTRICITY_MONGO_URL",
            "CENTRICITY_BUSINESS_UNITS",
            "CENTRICITY_KAFKA_SASL_PASSWORD",
            "CENTRICITY_ANSWER_LINK_SECRET",
            "CENTRICITY_SMTP_PASSWORD",
        )
        for secret in secrets:
            if secret in env:
                assert "secretKeyRef" in env[secret]["valueFrom"], secret
        assert {*SIGN_IN_SECRETS, "CENTRICITY_MONGO_URL", "CENTRICITY_BUSINESS_UNITS"} <= env.keys()
        assert {env[s]["valueFrom"]["secretKeyRef"]["name"] for s in SIGN_IN_SECRETS} == {
            "centricity-sign-in"
        }
        if service in ANSWER_LINK_SERVICES:
            assert env["CENTRICITY_ANSWER_LINK_SECRET"]["valueFrom"]["secretKeyRef"] == {
                "name": "centricity-sign-in",
                "key": "answer-link-secret",
            }
        else:
            assert "CENTRICITY_ANSWER_LINK_SECRET" not in env, service
        if service == "notifications":
            assert env["CENTRICITY_SMTP_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
                "name": "centricity-smtp",
                "key": "password",
            }
        else:
            assert "CENTRICITY_SMTP_PASSWORD" not in env, service
        if path != "base":
            assert env["CENTRICITY_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
                "name": name,
                "key": "password",
            }


def config_of(objects: tuple[dict[str, Any], ...], service: str) -> dict[str, str]:
    maps = {name.rsplit("-", 1)[0]: cm["data"] for name, cm in of_kind(objects, "ConfigMap").items()}
    return {**maps["centricity-common"], **maps[f"centricity-{service}"]}


@pytest.mark.parametrize("path", RENDERED)
def test_settings_name_each_services_port_group_and_database(path: str) -> None:
    objects = render(path)
    ports = {"ideas": "8101", "votes": "8102", "insights": "8103", "notifications": "8104"}
    assert set(ports) == set(SERVICES)
    for service in SERVICES:
        config = config_of(objects, service)
        assert config["CENTRICITY_HTTP_PORT"] == ports[service]
        assert config["CENTRICITY_KAFKA_GROUP_ID"] == f"centricity-{service}"
        assert config["CENTRICITY_MONGO_DATABASE"] == f"centricity_{service}"
        (container,) = of_kind(objects, "Deployment")[f"centricity-{service}"]["spec"]["template"]["spec"][
            "containers"
        ]
        assert container["ports"][0]["containerPort"] == int(ports[service])
        assert config["CENTRICITY_OIDC_ISSUER"].startswith("https://"), "people sign in with a provider"
        telemetry = config.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        assert (telemetry is not None) is (path != "base"), "OTLP export only with the collector"
        if path != "base":
            assert config["CENTRICITY_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
            assert config["CENTRICITY_KAFKA_SSL_CAFILE"].startswith("/etc/centricity/kafka-ca/")
        mail = {k for k in config if k.startswith(("CENTRICITY_SMTP_", "CENTRICITY_MAIL_"))}
        assert bool(mail) is (service == "notifications"), "only notifications sends mail"
    # Mail goes out through a relay over STARTTLS on the submission port; the password is a Secret.
    config = config_of(objects, "notifications")
    assert config["CENTRICITY_SMTP_HOST"]
    assert config["CENTRICITY_SMTP_PORT"] == "587"
    assert config["CENTRICITY_SMTP_START_TLS"] == "true"
    assert "CENTRICITY_SMTP_PASSWORD" not in config
    assert "@" in config["CENTRICITY_MAIL_FROM"]
    # Customers open the links of their mail in a browser: public HTTPS addresses.
    assert config["CENTRICITY_PUBLIC_URL"].startswith("https://")
    assert config["CENTRICITY_ANSWER_BASE_URL"].startswith("https://")


def test_the_ingress_serves_one_host_per_service_over_tls_and_the_links_in_mail_reach_them() -> None:
    objects = render("overlays/prod")
    ingresses = of_kind(objects, "Ingress").values()
    routes = {
        rule["host"]: path["backend"]["service"]["name"]
        for ingress in ingresses
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert sorted(routes.values()) == sorted(f"centricity-{s}" for s in SERVICES)
    tls_hosts = {host for ingress in ingresses for tls in ingress["spec"]["tls"] for host in tls["hosts"]}
    assert tls_hosts == set(routes)
    # Unsubscribe links go to the notifications host, answer links to the ideas host.
    config = config_of(objects, "notifications")
    assert routes[urlsplit(config["CENTRICITY_PUBLIC_URL"]).hostname or ""] == "centricity-notifications"
    assert routes[urlsplit(config["CENTRICITY_ANSWER_BASE_URL"]).hostname or ""] == "centricity-ideas"


def policies_for(objects: tuple[dict[str, Any], ...], labels: dict[str, str]) -> list[dict[str, Any]]:
    def selects(selector: dict[str, Any]) -> bool:
        ok = all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())
        for expr in selector.get("matchExpressions", []):
            assert expr["operator"] == "In"
            ok = ok and labels.get(expr["key"]) in expr["values"]
        return ok

    return [p for p in of_kind(objects, "NetworkPolicy").values() if selects(p["spec"]["podSelector"])]


# Where each service's pods may connect (without the collector's 4318): DNS 53, the OpenID
# provider 443, Kafka 9092/9093, MongoDB 27017; and the mail relay, 25/587, for notifications only.
EGRESS_PORTS = {
    "ideas": {53, 443, 9092, 9093, 27017},
    "votes": {53, 443, 9092, 9093, 27017},
    "insights": {53, 443, 9092, 9093, 27017},
    "notifications": {25, 53, 443, 587, 9092, 9093, 27017},
}


PROMETHEUS_PEER = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}


@pytest.mark.parametrize("path", RENDERED)
def test_network_policies_deny_by_default_then_allow_the_known_flows(path: str) -> None:
    assert set(EGRESS_PORTS) == set(SERVICES)
    objects = render(path)
    deny = of_kind(objects, "NetworkPolicy")["default-deny-all"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for service in SERVICES:
        labels = {"app.kubernetes.io/name": f"centricity-{service}"}
        policies = policies_for(objects, labels)
        ingress = [rule for p in policies for rule in p["spec"].get("ingress", [])]
        # The ways in are the ingress controller and, in prod, Prometheus for /metrics; services
        # never call each other.
        expected_peers = [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
        ]
        if path == "overlays/prod":
            expected_peers.append(PROMETHEUS_PEER)
        peers = [peer for rule in ingress for peer in rule["from"]]
        assert sorted(peers, key=json.dumps) == sorted(expected_peers, key=json.dumps)
        egress = [rule for p in policies for rule in p["spec"].get("egress", [])]
        egress_ports = {port["port"] for rule in egress for port in rule["ports"]}
        expected = EGRESS_PORTS[service] | ({4318} if path != "base" else set())
        assert egress_ports == expected, service
        # 443 is for the OpenID provider outside the cluster, and SMTP for the mail relay outside
        # it: never for pods inside it.
        for outside in ({443}, {25, 587}):
            rules = [r for r in egress if {port["port"] for port in r["ports"]} & outside]
            if outside <= egress_ports:
                assert all({port["port"] for port in r["ports"]} == outside for r in rules), service
                assert [peer["ipBlock"] for rule in rules for peer in rule["to"]] == [
                    {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]}
                ], service
            else:
                assert not rules, service


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_mongodb_is_a_replica_set_with_a_least_privilege_user_per_service(overlay: str) -> None:
    (mongo,) = of_kind(render(f"overlays/{overlay}"), "MongoDBCommunity").values()
    assert mongo["spec"]["type"] == "ReplicaSet"
    assert mongo["spec"]["members"] == (1 if overlay == "dev" else 3)
    assert mongo["spec"]["security"]["authentication"]["modes"] == ["SCRAM"]
    users = {u["name"]: u for u in mongo["spec"]["users"]}
    for service in SERVICES:
        user = users[f"centricity-{service}"]
        assert user["roles"] == [{"name": "readWrite", "db": f"centricity_{service}"}]
        assert "password" not in user
        assert user["passwordSecretRef"]["name"].endswith("-password")
        # The operator writes the connection string the service reads.
        deployment = of_kind(render(f"overlays/{overlay}"), "Deployment")[f"centricity-{service}"]
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        ref = env["CENTRICITY_MONGO_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": user["connectionStringSecretName"], "key": "connectionString.standard"}


def test_prod_scales_on_lag_and_cpu_spreads_and_keeps_one_pod_through_disruptions() -> None:
    objects = render("overlays/prod")
    scaled = of_kind(objects, "ScaledObject")
    budgets = of_kind(objects, "PodDisruptionBudget")
    assert not of_kind(objects, "HorizontalPodAutoscaler"), "KEDA owns the HPAs"
    assert set(SCALED_ON_LAG_OF) == set(SERVICES)
    for service, lagging in SCALED_ON_LAG_OF.items():
        name = f"centricity-{service}"
        spec = scaled[name]["spec"]
        assert spec["scaleTargetRef"]["name"] == name
        assert spec["minReplicaCount"] >= 2
        lag = [t for t in spec["triggers"] if t["type"] == "kafka"]
        assert {(t["metadata"]["topic"], t["metadata"]["consumerGroup"]) for t in lag} == lagging
        assert len(lag) == len(lagging)
        assert {g for _, g in lagging} <= SERVICE_GROUPS[service]
        assert {t["authenticationRef"]["name"] for t in lag} == {f"{name}-kafka"}
        assert any(t["type"] == "cpu" for t in spec["triggers"])
        assert budgets[name]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}
        pod = of_kind(objects, "Deployment")[name]["spec"]["template"]["spec"]
        keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


def test_dev_is_small() -> None:
    objects = render("overlays/dev")
    assert {d["spec"]["replicas"] for d in of_kind(objects, "Deployment").values()} == {1}
    assert not of_kind(objects, "ScaledObject")
    assert not of_kind(objects, "PodDisruptionBudget")


def test_the_hpa_component_scales_the_http_side_where_keda_is_absent() -> None:
    """No overlay uses components/hpa, so render it in a throwaway overlay next to the others."""
    folder = Path(tempfile.mkdtemp(prefix=".test-hpa-", dir=K8S / "overlays"))
    try:
        (folder / "kustomization.yaml").write_text(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: t\n"
            "resources: [../../base]\ncomponents: [../../components/hpa]\n"
        )
        objects = render(f"overlays/{folder.name}")
    finally:
        shutil.rmtree(folder)
    autoscalers = of_kind(objects, "HorizontalPodAutoscaler")
    for service in SERVICES:
        hpa = autoscalers[f"centricity-{service}"]
        kubernetes_validate.validate(hpa, KUBERNETES_VERSION, strict=True)
        assert hpa["spec"]["scaleTargetRef"]["name"] == f"centricity-{service}"
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"

"""``deploy/kubernetes`` against the Kubernetes API's own schemas (strict: an unknown or
misspelt field fails) and KEDA's CRD, plus what the schemas cannot say: every workload
has real probes, requests and a disruption budget; autoscaling never goes above the
partition count; the connectors file is what ``authtrail.kubernetes`` renders."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from authtrail.kubernetes import (
    SHARED_HEADER,
    destination_connectors,
    shared_connectors,
    to_yaml,
)
from schemas.destinations import make_destination
from schemas.settings import Settings
from tests.deploy.tools import ROOT, keda_schema

K8S = ROOT / "deploy" / "kubernetes"
# The oldest Kubernetes release still supported upstream, and the newest.
VERSIONS = ("1.33.0", "1.37.0")


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def resources() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [d for name in kustomization["resources"] for d in documents(K8S / name)]


def validate(resource: dict[str, Any], version: str) -> None:
    if resource["apiVersion"].startswith("keda.sh/"):
        jsonschema.validate(resource, keda_schema(resource["kind"]))
    else:
        kubernetes_validate.validate(resource, version, strict=True)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid(version: str) -> None:
    found = resources()
    kinds = {d["kind"] for d in found}
    assert {"Deployment", "PodDisruptionBudget", "ScaledObject", "Job", "Service"} <= kinds
    for resource in found:
        validate(resource, version)


def test_validation_is_strict() -> None:
    """A misspelt field fails: the validation above would catch one in our files."""
    deployment = next(d for d in resources() if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)
    scaled = next(d for d in resources() if d["kind"] == "ScaledObject")
    scaled["spec"]["maxReplicas"] = scaled["spec"].pop("maxReplicaCount")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, keda_schema("ScaledObject"))


def test_workloads_have_probes_requests_budgets_and_one_image() -> None:
    found = resources()
    deployments = [d for d in found if d["kind"] == "Deployment"]
    budgets = [d for d in found if d["kind"] == "PodDisruptionBudget"]
    assert {d["metadata"]["name"] for d in deployments} == {
        "authtrail-ingest",
        "authtrail-api",
        "authtrail-connectors",
    }
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == "authtrail"  # one image; the args pick the role
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        ready, live = container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"]
        assert ready["port"] in ports and live["port"] in ports
        assert ready["path"] in ("/readyz", "/healthz") and live["path"] == "/livez"
        assert container["resources"]["requests"]["cpu"]
        assert container["resources"]["requests"]["memory"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(
            b["spec"]["selector"]["matchLabels"].items() <= labels.items() for b in budgets
        ), deployment["metadata"]["name"]


def test_autoscaling_follows_lag_and_stays_within_the_partitions() -> None:
    found = resources()
    config = next(d for d in found if d["kind"] == "ConfigMap")["data"]
    partitions = int(config["AUTHTRAIL_TOPIC_PARTITIONS"])
    names = {d["metadata"]["name"] for d in found if d["kind"] == "Deployment"}
    (scaled,) = [d for d in found if d["kind"] == "ScaledObject"]
    assert scaled["spec"]["scaleTargetRef"]["name"] in names
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
    assert scaled["spec"]["maxReplicaCount"] == partitions
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["consumerGroup"] == Settings().ingest_group
    assert trigger["metadata"]["topic"] == Settings().topics.raw
    assert trigger["metadata"]["bootstrapServers"] == config["AUTHTRAIL_KAFKA_BOOTSTRAP"]
    assert trigger["metadata"]["allowIdleConsumers"] == "false"


def test_no_secret_values_in_the_manifests() -> None:
    found = resources()
    assert "Secret" not in {d["kind"] for d in found}
    config = next(d for d in found if d["kind"] == "ConfigMap")["data"]
    assert "AUTHTRAIL_SECRET_KEY" not in config and "AUTHTRAIL_CLICKHOUSE_URL" not in config
    for deployment in (d for d in found if d["kind"] in ("Deployment", "Job")):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        refs = [e.get("secretRef", {}).get("name") for e in container["envFrom"]]
        assert "authtrail-secrets" in refs


def test_connectors_file_is_the_rendered_one() -> None:
    committed = (K8S / "connectors.yaml").read_text()
    assert committed == to_yaml(shared_connectors(), SHARED_HEADER), (
        "regenerate: python -c 'from authtrail.kubernetes import *; "
        'print(to_yaml(shared_connectors(), SHARED_HEADER), end="")\' '
        "> deploy/kubernetes/connectors.yaml"
    )


def test_per_destination_manifests_scale_each_on_its_own_lag() -> None:
    settings = Settings(kafka_bootstrap="kafka:9092", topic_partitions=12, topic_prefix="prod.")
    datadog = make_destination(
        "datadog", "Datadog EU", {"api_key": "0" * 32, "site": "datadoghq.eu"}
    )
    splunk = make_destination(
        "splunk", "SOC", {"url": "https://splunk:8088", "token": "1" * 8 + "-" + "2" * 27}
    )
    paused = make_destination("coralogix", "off", {"api_key": "cxtp_abcdefghij0123456789"})
    paused = paused.model_copy(update={"paused": True})
    manifests = destination_connectors([datadog, splunk, paused], settings, "registry/at:1")
    assert [m["kind"] for m in manifests] == [
        "Deployment",
        "PodDisruptionBudget",
        "ScaledObject",
    ] * 2
    for manifest in manifests:
        validate(manifest, VERSIONS[-1])
    for destination, scaled in zip(
        (datadog, splunk), [m for m in manifests if m["kind"] == "ScaledObject"], strict=True
    ):
        meta = scaled["spec"]["triggers"][0]["metadata"]
        assert meta["consumerGroup"] == destination.group_id
        assert meta["topic"] == "prod.auth-events.normalized"
        assert scaled["spec"]["maxReplicaCount"] == 12
    deployment = manifests[0]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["connectors", "run", "--destination", datadog.id]
    assert container["image"] == "registry/at:1"
    # Rendering reveals no destination secret.
    assert "0" * 32 not in to_yaml(manifests)


def test_the_kustomization_renders_to_valid_manifests() -> None:
    """What `kubectl apply -k deploy/kubernetes` would send (kubectl renders it offline)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("no kubectl here: the files were validated one by one above")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    found = [d for d in yaml.safe_load_all(rendered) if d]
    assert len(found) == len(resources())
    for resource in found:
        validate(resource, VERSIONS[-1])
        if resource["kind"] != "Namespace":
            assert resource["metadata"]["namespace"] == "authtrail", resource["metadata"]
        assert resource["metadata"]["labels"]["app.kubernetes.io/part-of"] == "authtrail"
    images = {
        c["image"]
        for d in found
        if d["kind"] in ("Deployment", "Job")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"authtrail:latest"}

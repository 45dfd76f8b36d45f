"""Kubernetes manifests for the connectors, rendered from the destinations that exist:
``authtrail destinations manifests``.

Destinations are created at run time (the page, the API, the CLI), so their Deployments
cannot be written in advance. The shared ``authtrail-connectors`` Deployment
(``deploy/kubernetes/connectors.yaml``, rendered by ``shared_connectors``) runs every
destination in each replica; to scale a platform on its own, render one Deployment per
destination (``connectors run --destination <id>``) with a KEDA ScaledObject on that
destination's consumer-group lag, capped at the partition count (a replica more would
have no partition to read), and a PodDisruptionBudget."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from schemas.destinations import Destination
from schemas.settings import Settings

Manifest = dict[str, Any]

METRICS_PORT = 9464
# One replica per this many events behind: about a third of a second of one connector's
# rate (bench/: 66-115k events/s), so a backlog adds replicas quickly.
DEFAULT_LAG_THRESHOLD = 20_000


def _labels(component: str, destination: Destination | None = None) -> dict[str, str]:
    labels = {"app.kubernetes.io/name": "authtrail", "app.kubernetes.io/component": component}
    if destination is not None:
        labels["authtrail.io/destination"] = destination.id
        labels["authtrail.io/platform"] = destination.platform
    return labels


def connector_deployment(
    name: str, args: list[str], labels: dict[str, str], image: str, replicas: int
) -> Manifest:
    """A connectors Deployment: probes on the metrics port, non-root, read-only root,
    requests sized from bench/ (about one core and 220 MB at full speed)."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(METRICS_PORT),
                    },
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    # A batch in flight gets its reply and its commit before the pod goes.
                    "terminationGracePeriodSeconds": 90,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "fsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "connectors",
                            "image": image,
                            "args": args,
                            "envFrom": [
                                {"configMapRef": {"name": "authtrail-config"}},
                                {"secretRef": {"name": "authtrail-secrets"}},
                            ],
                            "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
                            "readinessProbe": {
                                "httpGet": {"path": "/readyz", "port": "metrics"},
                                "periodSeconds": 10,
                            },
                            "livenessProbe": {
                                "httpGet": {"path": "/livez", "port": "metrics"},
                                "initialDelaySeconds": 30,
                                "periodSeconds": 15,
                                "failureThreshold": 4,
                            },
                            "resources": {
                                "requests": {"cpu": "500m", "memory": "256Mi"},
                                "limits": {"memory": "512Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [
                                {"name": "data", "mountPath": "/var/lib/authtrail"},
                                {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 (an emptyDir)
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "data", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def disruption_budget(name: str, labels: dict[str, str]) -> Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "labels": labels},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}},
    }


def shared_connectors(image: str = "authtrail", replicas: int = 2) -> list[Manifest]:
    """The Deployment that runs every destination in each replica (each joins every
    destination's consumer group, so the partitions spread over the replicas)."""
    labels = _labels("connectors")
    return [
        connector_deployment(
            "authtrail-connectors", ["connectors", "run"], labels, image, replicas
        ),
        disruption_budget("authtrail-connectors", labels),
    ]


def destination_connectors(
    destinations: Iterable[Destination],
    settings: Settings,
    image: str = "authtrail",
    lag_threshold: int = DEFAULT_LAG_THRESHOLD,
) -> list[Manifest]:
    """Per enabled destination: a Deployment running only it, its PodDisruptionBudget,
    and a KEDA ScaledObject on its consumer group's lag over the normalized topic, from 1
    to ``settings.topic_partitions`` replicas."""
    manifests: list[Manifest] = []
    for destination in destinations:
        if destination.paused:
            continue
        name = f"authtrail-connector-{destination.id}"
        labels = _labels("connector", destination)
        args = ["connectors", "run", "--destination", destination.id]
        manifests.append(connector_deployment(name, args, labels, image, replicas=1))
        manifests.append(disruption_budget(name, labels))
        manifests.append(
            {
                "apiVersion": "keda.sh/v1alpha1",
                "kind": "ScaledObject",
                "metadata": {"name": name, "labels": labels},
                "spec": {
                    "scaleTargetRef": {"name": name},
                    "minReplicaCount": 1,
                    "maxReplicaCount": settings.topic_partitions,
                    "pollingInterval": 15,
                    "cooldownPeriod": 300,
                    "triggers": [
                        {
                            "type": "kafka",
                            "metadata": {
                                "bootstrapServers": settings.bootstrap_servers,
                                "consumerGroup": destination.group_id,
                                "topic": settings.topics.normalized,
                                "lagThreshold": str(lag_threshold),
                                "offsetResetPolicy": "earliest",
                                # Never more replicas than partitions with lag.
                                "allowIdleConsumers": "false",
                            },
                        }
                    ],
                },
            }
        )
    return manifests


SHARED_HEADER = """\
# The connectors: every replica runs every enabled destination (each destination is its
# own consumer group, so partitions spread over the replicas and one slow platform never
# holds back another). Scale with `kubectl scale deployment/authtrail-connectors`. To
# scale each platform on its own lag with KEDA, render a Deployment per destination:
#   authtrail destinations manifests --image <your image> | kubectl apply -n authtrail -f -
# and remove this file from kustomization.yaml.
# Generated by authtrail.kubernetes.shared_connectors (a test keeps the two equal).
"""


class _PlainDumper(yaml.SafeDumper):
    """Writes a repeated mapping (the labels) out each time: no &anchors in manifests."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(manifests: list[Manifest], header: str = "") -> str:
    """A multi-document YAML stream, in the order given."""
    body = "---\n".join(
        yaml.dump(m, Dumper=_PlainDumper, sort_keys=False, width=100) for m in manifests
    )
    return header + body

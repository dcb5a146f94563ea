"""Structural checks of the compose file, the Kubernetes manifests and the Dockerfiles.

None of them can run here (no Docker engine, no `docker compose` plugin, no cluster), so this checks what they
rely on: every reference resolves (ConfigMaps, Secrets, volumes, probe ports, PVCs, HPA targets), every
``ENECG_*`` variable is one the code reads and its value validates, mounted secret paths match the settings
that point at them, and the images agree with the project (extras, pins, user, entrypoint).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.entrypoint import EntrypointSettings
from deploy.security import SECRET_FILE_VARIABLES
from deploy.topics import ReplicationPolicy
from streamer.cli.main import COMMANDS
from streamer.settings import KafkaSettings, TopicSettings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"

API_VERSIONS = {
    "Namespace": "v1",
    "ConfigMap": "v1",
    "Secret": "v1",
    "PersistentVolumeClaim": "v1",
    "Deployment": "apps/v1",
    "Job": "batch/v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
    "PodDisruptionBudget": "policy/v1",
}
QUANTITY = re.compile(r"^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti)?$")


def _settings_variables() -> set[str]:
    names = {f"ENECG_KAFKA_{f.upper()}" for f in KafkaSettings.model_fields}
    names |= {f"ENECG_TOPIC_{f.upper()}" for f in (*TopicSettings.model_fields, *ReplicationPolicy.model_fields)}
    names |= {f"ENECG_{f.upper()}" for f in EntrypointSettings.model_fields}
    return names | set(SECRET_FILE_VARIABLES)


def _check_variable(name: str) -> None:
    """A settings field, or a variable another component reads by name (found in the package source)."""
    if name in _settings_variables():
        return
    sources = [p for d in ("streamer", "models", "deploy") for p in (ROOT / d).rglob("*.py")]
    assert any(name in p.read_text() for p in sources), f"{name} is read by nothing in the code"


def _load_k8s() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [d | {"_file": path.name} for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


K8S_DOCS = _load_k8s()
OBJECTS = [d for d in K8S_DOCS if d["kind"] != "Kustomization"]


def _named(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in OBJECTS if d["kind"] == kind}


def _pod_specs() -> list[tuple[str, dict[str, Any]]]:
    return [
        (d["metadata"]["name"], d["spec"]["template"]["spec"]) for d in OBJECTS if d["kind"] in ("Deployment", "Job")
    ]


@pytest.mark.parametrize("doc", OBJECTS, ids=lambda d: f"{d['_file']}:{d['kind']}/{d['metadata']['name']}")
def test_every_object_is_well_formed(doc: dict[str, Any]) -> None:
    assert doc["apiVersion"] == API_VERSIONS[doc["kind"]]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])
    if doc["kind"] != "Namespace":
        assert doc["metadata"]["namespace"] == "enecg"


def test_kustomization_lists_existing_files_and_leaves_the_optional_ones_out() -> None:
    (kustomization,) = [d for d in K8S_DOCS if d["kind"] == "Kustomization"]
    assert all((K8S / name).is_file() for name in kustomization["resources"])
    assert "hpa-lag.yaml" not in kustomization["resources"] and "worker-gpu.yaml" not in kustomization["resources"]


@pytest.mark.parametrize(("name", "pod"), _pod_specs(), ids=[n for n, _ in _pod_specs()])
def test_pod_references_resolve(name: str, pod: dict[str, Any]) -> None:
    volumes = {v["name"]: v for v in pod["volumes"]}
    config_maps, secrets, claims = _named("ConfigMap"), _named("Secret"), _named("PersistentVolumeClaim")
    for volume in volumes.values():
        if "secret" in volume:
            assert volume["secret"]["secretName"] in secrets
        if "persistentVolumeClaim" in volume:
            assert volume["persistentVolumeClaim"]["claimName"] in claims
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    for container in pod["containers"]:
        assert {m["name"] for m in container["volumeMounts"]} <= set(volumes)
        assert all(ref["configMapRef"]["name"] in config_maps for ref in container["envFrom"])
        for env in container.get("env", []):
            _check_variable(env["name"])
        ports = {p["name"] for p in container.get("ports", [])}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            if probe in container:
                assert container["args"][container["args"].index("--metrics-port") + 1] == "9100"
                # the kubelet probes the pod's address: /metrics must listen beyond the loopback default
                assert container["args"][container["args"].index("--metrics-host") + 1] == "0.0.0.0"
                assert container[probe]["httpGet"]["port"] in ports
        for section in container["resources"].values():
            assert all(QUANTITY.match(str(q)) for q in section.values()), section
        assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_deployments_select_their_own_pods_and_workers_run_the_worker() -> None:
    for deployment in _named("Deployment").values():
        template_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= template_labels.items()
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"][0] == "worker" and "worker" in COMMANDS


def test_gpu_variant_requests_a_gpu_and_refuses_cpu_fallback() -> None:
    gpu = _named("Deployment")["enecg-worker-gpu"]
    (container,) = gpu["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == container["resources"]["requests"]["nvidia.com/gpu"]
    assert {"name": "ENECG_REQUIRE_GPU", "value": "true"} in container["env"]
    assert container["image"].endswith(":gpu") and "/cache" in {m["mountPath"] for m in container["volumeMounts"]}
    cpu = _named("Deployment")["enecg-worker"]
    assert "nvidia.com/gpu" not in str(cpu["spec"]["template"]["spec"]["containers"][0]["resources"])


def test_configmap_values_validate_against_the_settings_models() -> None:
    data = _named("ConfigMap")["enecg-settings"]["data"]
    for name in data:
        _check_variable(name)

    def fields(prefix: str) -> dict[str, str]:
        return {k.removeprefix(prefix).lower(): v for k, v in data.items() if k.startswith(prefix)}

    kafka = fields("ENECG_KAFKA_")
    kafka.pop("sasl_password_file")
    settings = KafkaSettings(**kafka, sasl_password="placeholder")  # the password itself comes from the file
    assert settings.security_protocol == "SASL_SSL" and settings.sasl_mechanism == "SCRAM-SHA-512"
    TopicSettings(**fields("ENECG_TOPIC_"))
    ReplicationPolicy(**fields("ENECG_TOPIC_"))
    EntrypointSettings(**{k: v for k, v in fields("ENECG_").items() if k in EntrypointSettings.model_fields})


def test_secret_files_are_mounted_where_the_settings_look() -> None:
    data = _named("ConfigMap")["enecg-settings"]["data"]
    secrets = _named("Secret")
    for name, pod in _pod_specs():
        mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        for variable in ("ENECG_KAFKA_SASL_PASSWORD_FILE", "ENECG_KAFKA_SSL_CAFILE"):
            directory, key = data[variable].rsplit("/", 1)
            secret_name = volumes[mounts[directory]]["secret"]["secretName"]
            assert key in secrets[secret_name]["stringData"], f"{name}: {variable} points at a missing key"


def test_autoscaler_targets_the_worker_within_the_partition_count() -> None:
    partitions = int(_named("ConfigMap")["enecg-settings"]["data"]["ENECG_TOPIC_BED_PARTITIONS"])
    hpas = [d for d in OBJECTS if d["kind"] == "HorizontalPodAutoscaler"]
    assert {d["_file"] for d in hpas} == {"hpa.yaml", "hpa-lag.yaml"}
    for hpa in hpas:
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in _named("Deployment")
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= partitions
        assert {m["type"] for m in hpa["spec"]["metrics"]} >= {"Resource"}
    lag = next(d for d in hpas if d["_file"] == "hpa-lag.yaml")
    assert any(m["type"] == "External" for m in lag["spec"]["metrics"])


COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_runs_kraft_kafka_topics_workers_dashboard_and_replayer() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"kafka", "topics", "worker", "worker-gpu", "dashboard", "replayer"}
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert "controller" in env["KAFKA_PROCESS_ROLES"] and env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith("1@kafka:")
    assert not any("ZOOKEEPER" in k for k in env) and env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert services["worker"]["deploy"]["replicas"] == "${ENECG_WORKERS:-2}"
    for worker in ("worker", "worker-gpu"):  # scraped from the compose network, not from loopback
        command = services[worker]["command"]
        assert command[command.index("--metrics-host") + 1] == "0.0.0.0"
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]


@pytest.mark.parametrize("name", ["topics", "worker", "worker-gpu", "dashboard", "replayer"])
def test_compose_service_references_resolve(name: str) -> None:
    service = COMPOSE["services"][name]
    for dependency, condition in service["depends_on"].items():
        assert dependency in COMPOSE["services"]
        assert condition["condition"] in ("service_healthy", "service_completed_successfully")
    for variable in service["environment"]:
        _check_variable(variable)
    assert service["environment"]["ENECG_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    if "command" in service:
        assert service["command"][0] in COMMANDS  # passed to `enecg` by the image's entrypoint
    else:
        assert service["entrypoint"][:2] == ["python", "-m"]
        assert (ROOT / (service["entrypoint"][2].replace(".", "/") + ".py")).is_file()
    for volume in service.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith("."):
            assert (DEPLOY / source).is_dir(), source
        elif not source.startswith("$"):
            assert source in COMPOSE["volumes"]


def test_compose_replayer_replays_recordings_that_exist() -> None:
    replayer = COMPOSE["services"]["replayer"]
    mount = next(v for v in replayer["volumes"] if v.endswith(":/recordings:ro"))
    host = DEPLOY / mount.split(":")[0]
    records = [a.removeprefix("/recordings/") for a in replayer["command"] if a.startswith("/recordings/")]
    assert records and all((host / f"{r}.hea").is_file() for r in records)


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode != 0,
    reason="the docker compose plugin is not installed here",
)
def test_docker_compose_config_accepts_the_file() -> None:
    env = {"ENECG_DASHBOARD_TOKEN": "x", "PATH": "/usr/bin:/usr/local/bin"}
    result = subprocess.run(
        ["docker", "compose", "-f", str(DEPLOY / "compose.yaml"), "config", "--quiet"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def _instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line.strip() else "")
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


@pytest.mark.parametrize("name", ["Dockerfile", "Dockerfile.gpu"])
def test_images_install_the_project_and_run_the_entrypoint_as_a_user(name: str) -> None:
    steps = _instructions(DEPLOY / "docker" / name)
    args = {v.split("=", 1)[0]: v.split("=", 1)[1] for k, v in steps if k == "ARG" and "=" in v}
    assert steps[-2] == ("ENTRYPOINT", '["python", "-m", "deploy.entrypoint"]')
    assert steps[-1][0] == "CMD" and '"worker"' in steps[-1][1]
    assert '"--metrics-host", "0.0.0.0"' in steps[-1][1], "a container's /metrics is scraped from outside it"
    assert any(k == "USER" and v.startswith("10001") for k, v in steps)
    for kind, value in steps:
        if kind == "COPY" and not value.startswith("--from"):
            assert all((ROOT / src.rstrip("/")).exists() for src in value.split()[:-1]), value
    installs = " ".join(v for k, v in steps if k == "RUN" and "pip install" in v)
    assert "constraints" in installs and (DEPLOY / "docker" / f"{name}.dockerignore").is_file()
    if name == "Dockerfile":
        assert args["PYTHON_IMAGE"] == "python:3.11-slim" and "-c constraints.txt ." in installs
    else:
        project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
        (trt_pin,) = project["optional-dependencies"]["tensorrt"]
        assert args["CUDA_IMAGE"].startswith("nvidia/cuda:") and "runtime" in args["CUDA_IMAGE"]
        assert '".[tensorrt]"' in installs and "grep -v '^torch=='" in installs
        # torch-tensorrt X.Y.* needs torch X.Y.*
        assert trt_pin.split("==")[1].rsplit(".", 1)[0] == args["TORCH_VERSION"].rsplit(".", 1)[0]

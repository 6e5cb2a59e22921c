"""deploy/k8s (Kustomize) and deploy/grafana cannot run here (no cluster), so they are checked offline:
every overlay is rendered with kustomize (built by deploy/bootstrap.sh), every object validated against the
Kubernetes API schemas (kubernetes-validate), and the objects cross-checked with the code's own defaults
(ports, env prefixes and setting names, probe paths, the worker's port, graceful shutdown, every service) as
tests/test_compose.py does for compose.yaml. The dashboard's queries are checked against a real scrape."""
from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from sqlalchemy.engine import make_url

from kontor.service import API_DRAIN_TIMEOUT_S
from kontor.settings import ServiceSettings
from kontor.worker import DRAIN_TIMEOUT_S
from kontor_clients.spec import SPEC as CLIENTS
from kontor_invoicing.spec import SPEC as INVOICING
from kontor_notifications.spec import SPEC as NOTIFICATIONS
from kontor_orders.spec import SPEC as ORDERS
from kontor_portal.settings import PortalSettings

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZE = ROOT / ".local" / "tools" / "bin" / "kustomize"
SPECS = [ORDERS, CLIENTS, INVOICING, NOTIFICATIONS]
OVERLAYS = ["dev", "production"]
SCALED = {"invoicing", "notifications"}  # workers with a HorizontalPodAutoscaler
# the oldest Kubernetes release the manifests are meant for, and the newest the schemas know
KUBERNETES_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
SHARED_ENV = {"KONTOR_JWT_SECRET": "jwt_secret", "KONTOR_ENV": "environment"}  # one name in every service
OTHER_ENV = {"XDG_CACHE_HOME"}  # not a Kontor setting: fontconfig's cache on the read-only root file system
PORTAL, KEYCLOAK = "kontor-portal", "kontor-keycloak"
REALM = ROOT / "deploy" / "keycloak" / "kontor-realm.json"
GENERATED = re.compile(r"-[a-z0-9]{10}$")  # the hash suffix kustomize gives generated ConfigMaps and Secrets


def render(path: Path) -> list[dict[str, Any]]:
    if not KUSTOMIZE.exists():
        pytest.fail(f"{KUSTOMIZE} is missing: deploy/bootstrap.sh builds it (it needs Go 1.22 or newer)")
    out = subprocess.run([str(KUSTOMIZE), "build", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {name: render(K8S / "overlays" / name) for name in OVERLAYS}


class Objects:
    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [d for d in self.docs if d["kind"] == kind and
                 (d["metadata"]["name"] == name or (GENERATED.sub("", d["metadata"]["name"]) == name
                  and kind in ("ConfigMap", "Secret")))]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
        return found[0]

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"]["template"]["spec"]


def container_env(objects: Objects, container: dict[str, Any]) -> tuple[dict[str, str], dict[str, dict]]:
    """The literal environment (from its ConfigMaps and values) and the variables taken from Secrets."""
    values: dict[str, str] = {}
    from_secrets: dict[str, dict] = {}
    for source in container.get("envFrom", []):
        values.update(objects.get("ConfigMap", GENERATED.sub("", source["configMapRef"]["name"]))["data"])
    for var in container.get("env", []):
        if "value" in var:
            values[var["name"]] = var["value"]
        else:
            from_secrets[var["name"]] = var["valueFrom"]["secretKeyRef"]
    return values, from_secrets


def walk_containers(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for d in docs:
        if d["kind"] in ("Deployment", "Job"):
            for c in pod_spec(d)["containers"]:
                yield d, c


@pytest.mark.unit
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_against_the_kubernetes_schemas(rendered, overlay):
    docs = rendered[overlay]
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "Job", "ConfigMap", "PodDisruptionBudget",
                                        "HorizontalPodAutoscaler"}
    for version in KUBERNETES_VERSIONS:
        for doc in docs:
            try:  # strict: a field the API does not know (a typo) is an error too
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(f"{overlay}: {doc['kind']}/{doc['metadata']['name']} on Kubernetes {version}: {exc}")
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names))
    assert {d["metadata"].get("namespace") for d in docs} == {"kontor-dev" if overlay == "dev" else "kontor"}
    assert all(d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "kontor" for d in docs)


@pytest.mark.unit
@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_each_service_has_api_service_worker_migration_and_budgets_consistent_with_the_code(rendered, overlay,
                                                                                            spec):
    objects = Objects(rendered[overlay])
    name = f"kontor-{spec.name}"
    api, worker = objects.get("Deployment", f"{name}-api"), objects.get("Deployment", f"{name}-worker")
    job, service = objects.get("Job", f"{name}-migrate"), objects.get("Service", name)
    (api_c,), (worker_c,), (job_c,) = (pod_spec(o)["containers"] for o in (api, worker, job))
    assert (api_c["args"], worker_c["args"], job_c["args"]) == (["api"], ["worker"], ["migrate"]), \
        "the image's entrypoint runs kontor-<service> with these (deploy/Dockerfile)"
    images = {c["image"] for c in (api_c, worker_c, job_c)}
    assert len(images) == 1 and images.pop().rsplit("/", 1)[-1].split(":")[0] == name, "one image per service"
    assert pod_spec(job)["restartPolicy"] == "Never"

    # the Service reaches the API's pods, on the port the code listens on by default
    selector = service["spec"]["selector"]
    assert selector.items() <= api["spec"]["template"]["metadata"]["labels"].items()
    assert not selector.items() <= worker["spec"]["template"]["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    (api_port,) = api_c["ports"]
    assert port["port"] == api_port["containerPort"] == spec.default_port
    assert port["targetPort"] == api_port["name"]

    # both kinds of process: settings the code has, probes on its paths and its ports, scraped where /metrics is
    for deployment, container in ((api, api_c), (worker, worker_c), (job, job_c)):
        values, secrets = container_env(objects, container)
        settings = settings_of(spec, values, secrets, objects)
        assert settings.run_migrations_on_start is False, "the Job migrates"
        assert settings.http_port == spec.default_port
        assert settings.worker_http_port is not None
        assert settings.environment == ("development" if overlay == "dev" else "production")
        if deployment is job:
            continue
        (container_port,) = container["ports"]
        expected = settings.http_port if deployment is api else settings.worker_http_port
        assert container_port["containerPort"] == expected
        probes = {k: container[k]["httpGet"] for k in ("startupProbe", "livenessProbe", "readinessProbe")}
        assert {k: p["path"] for k, p in probes.items()} == {
            "startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
        assert {p["port"] for p in probes.values()} == {container_port["name"]}
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": str(expected),
                               "prometheus.io/path": "/metrics"}
        resources = container["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys() and "memory" in resources["limits"]

    # graceful shutdown: the grace period covers what the code gives the work in hand on SIGTERM
    assert api_c["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
    assert pod_spec(api)["terminationGracePeriodSeconds"] >= 5 + API_DRAIN_TIMEOUT_S + 5
    assert pod_spec(worker)["terminationGracePeriodSeconds"] >= DRAIN_TIMEOUT_S + 15
    assert api["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0

    # a disruption budget for the API's and for the worker's pods
    budgets = {b["metadata"]["name"]: b["spec"] for b in objects.kinds("PodDisruptionBudget")}
    for deployment in (api, worker):
        budget = budgets[deployment["metadata"]["name"]]
        assert budget["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
        assert budget["maxUnavailable"] == 1

    autoscalers = {h["spec"]["scaleTargetRef"]["name"]: h["spec"] for h in objects.kinds("HorizontalPodAutoscaler")}
    if spec.name in SCALED:
        hpa = autoscalers[f"{name}-worker"]
        assert hpa["scaleTargetRef"]["kind"] == "Deployment" and 1 <= hpa["minReplicas"] < hpa["maxReplicas"]
        assert "replicas" not in worker["spec"], "the autoscaler owns the worker's replicas"
        assert "cpu" in worker_c["resources"]["requests"], "a CPU target needs a CPU request"
    else:
        assert f"{name}-worker" not in autoscalers
        assert worker["spec"]["replicas"] == 1


def settings_of(spec, values: dict[str, str], secrets: dict[str, dict], objects: Objects) -> ServiceSettings:
    """The settings a pod starts with: every variable is a setting of the service, the secrets from Secrets."""
    fields = set(spec.settings_cls.model_fields)
    assert set(SHARED_ENV) <= set(values) | set(secrets), "the secret and the environment are given, not defaulted"
    kwargs: dict[str, Any] = {}
    for key, value in {**values, **{k: f"<secret {ref['name']}/{ref['key']}>" for k, ref in secrets.items()}}.items():
        if key in OTHER_ENV:
            continue
        if key in SHARED_ENV:
            kwargs[SHARED_ENV[key]] = value
            continue
        assert key.startswith(spec.env_prefix), f"{key} lacks the prefix {spec.env_prefix}"
        setting = key.removeprefix(spec.env_prefix).lower()
        assert setting in fields, f"{key} is not a setting of {spec.name}"
        kwargs[setting] = value
    # secrets: the JWT secret, the database URL with its password, the SMTP password, nothing else
    assert secrets["KONTOR_JWT_SECRET"] == {"name": secrets["KONTOR_JWT_SECRET"]["name"], "key": "jwt-secret"}
    assert GENERATED.sub("", secrets["KONTOR_JWT_SECRET"]["name"]) == "kontor-secrets"
    database = secrets[f"{spec.env_prefix}DATABASE_URL"]
    assert database["key"] == "uri" and GENERATED.sub("", database["name"]) == f"kontor-{spec.name}-db-app"
    expected = {"KONTOR_JWT_SECRET", f"{spec.env_prefix}DATABASE_URL"}
    if spec.name == "notifications":
        assert secrets[f"{spec.env_prefix}SMTP_PASSWORD"]["key"] == "smtp-password"
        expected.add(f"{spec.env_prefix}SMTP_PASSWORD")
    assert set(secrets) == expected
    kwargs["jwt_secret"] = "k" * 48
    generated = [s for s in objects.kinds("Secret") if s["metadata"]["name"] == database["name"]]
    kwargs["database_url"] = (generated[0]["data"]["uri"] if generated else
                              f"postgresql://kontor_{spec.name}:pw@kontor-{spec.name}-db-rw:5432/kontor_{spec.name}")
    if generated:
        import base64

        kwargs["database_url"] = base64.b64decode(kwargs["database_url"]).decode()
    settings = spec.settings_cls(**kwargs)
    assert make_url(settings.database_url).drivername == "postgresql+asyncpg"
    assert make_url(settings.database_url).database == f"kontor_{spec.name}"
    return settings


@pytest.mark.unit
def test_dev_generates_its_secrets_and_production_keeps_them_out_of_git(rendered):
    dev = Objects(rendered["dev"])
    assert sorted(GENERATED.sub("", s["metadata"]["name"]) for s in dev.kinds("Secret")) == sorted(
        ["kontor-secrets", "kontor-keycloak-db-app", *(f"kontor-{s.name}-db-app" for s in SPECS)])
    assert Objects(rendered["production"]).kinds("Secret") == [], "created by the operator and CloudNativePG"


@pytest.mark.unit
def test_production_points_at_the_strimzi_and_cloudnativepg_examples(rendered):
    """Strimzi: the bootstrap Service of the example cluster, replication 3 and min.insync.replicas 2 both in the
    topics the workers create and the broker's defaults, on three nodes. CloudNativePG: one Cluster per service
    whose app Secret (`<cluster>-app`, key `uri`) the pods read, with the service's database."""
    objects = Objects(rendered["production"])
    strimzi = {d["kind"]: d for d in yaml.safe_load_all((K8S / "external" / "strimzi-kafka.yaml").read_text())}
    kafka, pool = strimzi["Kafka"], strimzi["KafkaNodePool"]
    (listener,) = [li for li in kafka["spec"]["kafka"]["listeners"] if not li["tls"]]
    bootstrap = f"{kafka['metadata']['name']}-kafka-bootstrap.{kafka['metadata']['namespace']}.svc:{listener['port']}"
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert pool["spec"]["replicas"] >= 3 and {"broker", "controller"} <= set(pool["spec"]["roles"])
    broker = kafka["spec"]["kafka"]["config"]
    assert (broker["default.replication.factor"], broker["min.insync.replicas"]) == (3, 2)
    clusters = {c["metadata"]["name"]: c["spec"] for c in
                yaml.safe_load_all((K8S / "external" / "cloudnativepg.yaml").read_text())}
    assert len(clusters) == len(SPECS)
    for spec in SPECS:
        (_, container), *_ = [(d, c) for d, c in walk_containers(rendered["production"])
                              if d["metadata"]["name"] == f"kontor-{spec.name}-worker"]
        values, secrets = container_env(objects, container)
        settings = settings_of(spec, values, secrets, objects)
        assert settings.kafka_bootstrap == bootstrap
        assert (settings.topic_replication, settings.topic_min_insync_replicas) == (3, 2)
        cluster = clusters[secrets[f"{spec.env_prefix}DATABASE_URL"]["name"].removesuffix("-app")]
        assert cluster["bootstrap"]["initdb"]["database"] == f"kontor_{spec.name}"
        assert cluster["instances"] >= 2


@pytest.mark.unit
def test_the_dev_overlay_points_at_the_development_infrastructure(rendered):
    objects = Objects(rendered["dev"])
    for deployment, container in walk_containers(rendered["dev"]):
        if deployment["metadata"]["name"] in (PORTAL, KEYCLOAK):
            continue  # test_the_portal_... and test_keycloak_...
        spec = next(s for s in SPECS if deployment["metadata"]["name"].startswith(f"kontor-{s.name}-"))
        values, secrets = container_env(objects, container)
        settings = settings_of(spec, values, secrets, objects)
        assert settings.topic_replication == 1 and settings.topic_min_insync_replicas is None, "one broker"
        assert make_url(settings.database_url).host == "postgres"
        if deployment["kind"] == "Deployment" and deployment["metadata"]["name"].endswith("-api"):
            assert deployment["spec"]["replicas"] == 1


def service_port(objects: Objects, url: str) -> None:
    """`url` names a Service of the manifests, on one of its ports."""
    host, port = re.match(r"https?://([^:/]+):(\d+)", url).groups()  # type: ignore[union-attr]
    assert int(port) in [p["port"] for p in objects.get("Service", host)["spec"]["ports"]], url


@pytest.mark.unit
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_portal_has_a_deployment_and_service_consistent_with_its_settings_and_the_apis(rendered, overlay):
    objects = Objects(rendered[overlay])
    portal, service = objects.get("Deployment", PORTAL), objects.get("Service", PORTAL)
    (container,) = pod_spec(portal)["containers"]
    assert container["args"] == ["api"], "kontor-portal api (deploy/Dockerfile's entrypoint)"
    assert container["image"].rsplit("/", 1)[-1].split(":")[0] == PORTAL
    values, secrets = container_env(objects, container)
    fields = set(PortalSettings.model_fields)
    for key in values:
        if key in OTHER_ENV or key == "KONTOR_ENV":
            continue
        assert key.startswith("KONTOR_PORTAL_") and key.removeprefix("KONTOR_PORTAL_").lower() in fields, key
    assert secrets == {"KONTOR_PORTAL_SESSION_SECRET": {"name": secrets["KONTOR_PORTAL_SESSION_SECRET"]["name"],
                                                        "key": "portal-session-secret"}}
    # the settings accept it as a pod starts (production refuses a portal without OpenID Connect)
    settings = PortalSettings(**{k.removeprefix("KONTOR_PORTAL_").lower(): v for k, v in values.items()
                                 if k.startswith("KONTOR_PORTAL_")}, session_secret="s" * 48,
                              environment=values["KONTOR_ENV"])
    assert settings.environment == ("development" if overlay == "dev" else "production")
    assert settings.oidc_issuer and settings.oidc_discovery_url
    (port,), (container_port,) = service["spec"]["ports"], container["ports"]
    assert port["port"] == container_port["containerPort"] == settings.http_port == 8100
    assert port["targetPort"] == container_port["name"]
    assert service["spec"]["selector"].items() <= portal["spec"]["template"]["metadata"]["labels"].items()
    assert {container[k]["httpGet"]["path"] for k in ("startupProbe", "livenessProbe", "readinessProbe")} == \
        {"/healthz"}
    # the four APIs and Keycloak's discovery document by their Services, inside the cluster
    for url in (settings.orders_url, settings.clients_url, settings.invoicing_url, settings.notifications_url):
        service_port(objects, url)
    assert {settings.orders_url, settings.clients_url, settings.invoicing_url, settings.notifications_url} == {
        f"http://kontor-{s.name}:{s.default_port}" for s in SPECS}
    service_port(objects, settings.oidc_discovery_url)
    assert settings.oidc_discovery_url.endswith("/realms/kontor/.well-known/openid-configuration")
    assert pod_spec(portal)["securityContext"]["runAsNonRoot"] is True
    budgets = {b["metadata"]["name"]: b["spec"] for b in objects.kinds("PodDisruptionBudget")}
    assert budgets[PORTAL]["selector"]["matchLabels"] == portal["spec"]["selector"]["matchLabels"]


@pytest.mark.unit
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keycloak_imports_the_realm_file_and_every_service_trusts_its_issuer(rendered, overlay):
    objects = Objects(rendered[overlay])
    keycloak, service = objects.get("Deployment", KEYCLOAK), objects.get("Service", KEYCLOAK)
    (container,) = pod_spec(keycloak)["containers"]
    assert container["args"] == ["start", "--import-realm"]
    values, secrets = container_env(objects, container)
    assert values["KC_HEALTH_ENABLED"] == "true" and values["KC_HTTP_ENABLED"] == "true"
    assert values["KC_DB"] == "postgres" and values["KC_HOSTNAME_BACKCHANNEL_DYNAMIC"] == "true"
    assert {k: v["key"] for k, v in secrets.items()} == {
        "KC_DB_URL": "jdbc-uri", "KC_DB_USERNAME": "username", "KC_DB_PASSWORD": "password",
        "KC_BOOTSTRAP_ADMIN_PASSWORD": "admin-password"}
    # the realm: the ConfigMap holds deploy/keycloak/kontor-realm.json as it is, mounted where --import-realm reads
    (mount,) = container["volumeMounts"]
    assert mount["mountPath"] == "/opt/keycloak/data/import"
    (volume,) = [v for v in pod_spec(keycloak)["volumes"] if v["name"] == mount["name"]]
    realm = objects.get("ConfigMap", GENERATED.sub("", volume["configMap"]["name"]))
    assert GENERATED.sub("", realm["metadata"]["name"]) == "kontor-keycloak-realm"
    assert json.loads(realm["data"]["kontor-realm.json"]) == json.loads(REALM.read_text())
    # probes on the management interface, the Service on the HTTP port
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": int(values["KC_HTTP_PORT"]), "management": 9000}
    assert {k: (container[k]["httpGet"]["path"], container[k]["httpGet"]["port"])
            for k in ("startupProbe", "livenessProbe", "readinessProbe")} == {
        "startupProbe": ("/health/started", "management"), "livenessProbe": ("/health/live", "management"),
        "readinessProbe": ("/health/ready", "management")}
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "http" and port["port"] == ports["http"]
    assert service["spec"]["selector"].items() <= keycloak["spec"]["template"]["metadata"]["labels"].items()

    # one issuer: the address browsers use (KC_HOSTNAME) in every service's and the portal's settings, the keys
    # fetched inside the cluster
    issuer = values["KC_HOSTNAME"].rstrip("/") + "/realms/kontor"
    (portal_c,) = pod_spec(objects.get("Deployment", PORTAL))["containers"]
    assert container_env(objects, portal_c)[0]["KONTOR_PORTAL_OIDC_ISSUER"] == issuer
    for spec in SPECS:
        (api_c,) = pod_spec(objects.get("Deployment", f"kontor-{spec.name}-api"))["containers"]
        settings = settings_of(spec, *container_env(objects, api_c), objects)
        assert settings.jwt_issuer == issuer and settings.jwt_audience == "kontor-api"
        assert settings.jwks_url == "http://kontor-keycloak:8080/realms/kontor/protocol/openid-connect/certs"
        service_port(objects, settings.jwks_url)
        assert settings.jwt_accept_dev_tokens is False
    if overlay == "dev":  # the realm file's portal client lets the portal's address sign in and out
        (client,) = [c for c in json.loads(REALM.read_text())["clients"] if c["clientId"] == "kontor-portal"]
        public = container_env(objects, portal_c)[0]["KONTOR_PORTAL_PUBLIC_BASE_URL"]
        assert f"{public}/*" in client["redirectUris"]


@pytest.mark.unit
def test_a_plain_postgresql_url_is_taken_with_the_asyncpg_driver():
    """CloudNativePG's app secret holds `postgresql://…`; the services use asyncpg."""
    def url(value: str) -> str:
        return ServiceSettings(database_url=value, environment="development").database_url

    assert url("postgresql://kontor_orders:s3cret@kontor-orders-db-rw.kontor:5432/kontor_orders") == \
        "postgresql+asyncpg://kontor_orders:s3cret@kontor-orders-db-rw.kontor:5432/kontor_orders"
    assert url("postgres://u@h/d") == "postgresql+asyncpg://u@h/d"
    assert url("postgresql+asyncpg://u@h/d") == "postgresql+asyncpg://u@h/d"


# -- the Grafana dashboard -------------------------------------------------------------------------

DASHBOARD = ROOT / "deploy" / "grafana" / "kontor.json"
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                "offset", "inf", "nan"}


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def queried_metrics(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (without label matchers, groupings, ranges, functions)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        following = expr[m.end():].lstrip()[:1]
        if following == "(" or m.group(0).lower() in PROMQL_WORDS or m.group(0).startswith("$"):
            continue
        if expr[m.start() - 1:m.start()] == "$":
            continue  # a Grafana variable, $__rate_interval
        names.add(m.group(0))
    return names


def exposed(scrape: str) -> set[str]:
    """Every series name a scrape can show: its samples', and those its declared families would have."""
    names = {line.split("{")[0].split(" ")[0] for line in scrape.splitlines() if line and not line.startswith("#")}
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""],
                "summary": ["_sum", "_count", ""]}
    for family, kind in re.findall(r"^# TYPE (\S+) (\S+)$", scrape, re.M):
        names.update(family + s for s in ["", *suffixes.get(kind, [])])  # a counter's family may end in _total
    return names


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


@pytest.mark.unit
def test_the_dashboard_is_a_grafana_dashboard_over_a_prometheus_datasource(dashboard):
    assert dashboard["uid"] == "kontor" and dashboard["title"]
    (datasource,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert datasource["query"] == "prometheus"
    panels = dashboard_panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    graphs = [p for p in panels if p["type"] != "row"]
    for panel in graphs:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"] and all(t["expr"] and t["refId"] for t in panel["targets"]), panel["title"]
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()
    titles = " ".join(p["title"].lower() for p in panels)
    for topic in ("throughput", "error", "lag", "backlog", "dead letter", "billing run", "e-mail"):
        assert topic in titles, f"no panel on {topic}"


@pytest.mark.unit
def test_queried_metric_names_are_read_from_promql():
    assert queried_metrics('sum by (app_kubernetes_io_name) (rate(http_requests_total{status=~"5.."}'
                           '[$__rate_interval])) / sum(rate(http_requests_total[5m]))') == {"http_requests_total"}
    assert queried_metrics("histogram_quantile(0.95, sum by (le) (rate(kontor_consumer_handle_seconds_bucket[5m])))"
                           " > bool 1") == {"kontor_consumer_handle_seconds_bucket"}


@pytest.mark.integration
@pytest.mark.timeout(240)
async def test_every_metric_the_dashboard_queries_is_in_a_scrape_of_the_running_services(infra, topic_prefix,
                                                                                         dashboard):
    """The four services running (API and worker each, the worker's /metrics on WORKER_HTTP_PORT as in the pods),
    every /metrics scraped over HTTP: each metric the dashboard queries is there."""
    import contextlib

    from kontor.testing import free_port
    from kontor.testing.services import running_service

    queried = set().union(*(queried_metrics(t["expr"]) for p in dashboard_panels(dashboard)
                            for t in p.get("targets", [])))
    scrapes: dict[str, str] = {}
    async with contextlib.AsyncExitStack() as stack:
        for spec in SPECS:
            extra: dict[str, Any] = {"billing_runs_enabled": False} if spec.name == "invoicing" else {}
            running = await stack.enter_async_context(running_service(
                spec, infra, topic_prefix=topic_prefix, serve_http=True, worker_http_port=free_port(), **extra))
            assert running.base_url and running.worker_url
            async with httpx.AsyncClient(base_url=running.base_url, timeout=30) as http:
                api = await http.get("/metrics")
            assert api.status_code == 200, api.text
            scrapes[f"{spec.name} api"] = api.text
            async with httpx.AsyncClient(base_url=running.worker_url, timeout=30) as worker:
                for path in ("/healthz", "/readyz"):  # the probes' paths on the worker's port
                    assert (await worker.get(path)).status_code == 200, path
                scraped = await worker.get("/metrics")
                assert scraped.status_code == 200, scraped.text
                scrapes[f"{spec.name} worker"] = scraped.text
    available = set().union(*(exposed(s) for s in scrapes.values()))
    assert queried, "the dashboard queries metrics"
    missing = sorted(queried - available)
    assert not missing, f"the dashboard queries metrics no process exposes: {missing}"
    assert {m for m in queried if m.startswith("kontor_")}, "Kontor's own metrics are on the dashboard"

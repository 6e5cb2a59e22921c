"""compose.yaml's consistency with the code: every service has its migration job, API and worker,
with the ports, env prefixes and databases the code uses by default; images and published ports are
parameters with the official images and the documented ports as defaults. (That it runs:
tests/test_containers_compose.py.)"""
import json
import re
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

from kontor_clients.spec import SPEC as CLIENTS
from kontor_invoicing.spec import SPEC as INVOICING
from kontor_notifications.spec import SPEC as NOTIFICATIONS
from kontor_orders.spec import SPEC as ORDERS
from kontor_portal.settings import PortalSettings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[1]
SPECS = [ORDERS, CLIENTS, INVOICING, NOTIFICATIONS]
PORTAL_PORT = PortalSettings.model_fields["http_port"].default
REALM = ROOT / "deploy" / "keycloak" / "kontor-realm.json"
KEYCLOAK_VERSION = re.search(r"<keycloak.version>([^<]+)<", (ROOT / "deploy" / "keycloak" / "pom.xml").read_text())


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_infrastructure_services(compose):
    services = compose["services"]
    assert services["kafka"]["image"] == "${KAFKA_IMAGE:-apache/kafka:3.9.1}"
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller", "KRaft mode"
    assert services["postgres"]["image"] == "${POSTGRES_IMAGE:-postgres:16-alpine}"
    assert services["mail"]["image"].startswith("${MAIL_IMAGE:-axllent/mailpit:")
    assert services["kafka"]["ports"] == ["127.0.0.1:${KAFKA_PORT:-19092}:19092"]
    assert "HOST://127.0.0.1:${KAFKA_PORT:-19092}" in services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert services["postgres"]["ports"] == ["127.0.0.1:${POSTGRES_PORT:-15432}:5432"]
    assert services["mail"]["ports"] == ["127.0.0.1:${SMTP_PORT:-1025}:1025", "127.0.0.1:${MAIL_UI_PORT:-8025}:8025"]
    assert {services[s]["restart"] for s in ("kafka", "postgres", "mail")} == {"unless-stopped"}
    init = (ROOT / "deploy" / "postgres-init.sql").read_text()
    assert sorted(re.findall(r"CREATE DATABASE (\w+);", init)) == sorted(
        ["keycloak", *(f"kontor_{s.name}" for s in SPECS)])


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_each_service_has_migration_api_and_worker_consistent_with_the_code(compose, spec):
    services = compose["services"]
    migrate, api, worker = (services[f"{spec.name}-{role}"] for role in ("migrate", "api", "worker"))
    assert migrate["command"] == ["migrate"] and migrate["restart"] == "no"
    assert api["command"] == ["api"] and worker["command"] == ["worker"]
    assert migrate["build"] == {"context": ".", "dockerfile": "deploy/Dockerfile",
                                "args": {"SERVICE": spec.name, "PYTHON_IMAGE": "${PYTHON_IMAGE:-python:3.11-slim}"}}
    for svc in (api, worker):
        assert svc["healthcheck"]["test"][:2] == ["CMD", "python"], "every long-running container is checked"
        assert svc["depends_on"][f"{spec.name}-migrate"]["condition"] == "service_completed_successfully"
        assert svc["restart"] == "unless-stopped", "a crashed process comes back"

    env = api["environment"]
    assert env == worker["environment"] == migrate["environment"]
    fields = set(spec.settings_cls.model_fields)
    shared = {"KONTOR_JWT_SECRET": "jwt_secret", "KONTOR_ENV": "environment"}  # one name in every service
    assert set(shared) <= set(env), "the secret and the environment are given, not defaulted"
    assert env["KONTOR_JWT_SECRET"].startswith("${KONTOR_JWT_SECRET:?"), "no default secret: compose refuses without"
    for key in set(env) - set(shared):
        assert key.startswith(spec.env_prefix), f"{key} lacks the prefix {spec.env_prefix}"
        assert key.removeprefix(spec.env_prefix).lower() in fields, f"{key} is not a setting of {spec.name}"
    defaulted = {k: re.sub(r"^\$\{\w+:-(.*)\}$", r"\1", v) for k, v in env.items()}  # ${X:-default}
    settings = spec.settings_cls(**{k.removeprefix(spec.env_prefix).lower(): v for k, v in defaulted.items()
                                    if k not in shared}, environment="development")
    assert settings.http_port == spec.default_port
    up = spec.name.upper()
    assert api["ports"] == [f"127.0.0.1:${{{up}_PORT:-{spec.default_port}}}:{spec.default_port}"]
    assert str(settings.worker_http_port) in worker["healthcheck"]["test"][-1]
    assert make_url(settings.database_url).database == f"kontor_{spec.name}"
    assert make_url(spec.settings_cls().database_url).database == f"kontor_{spec.name}", "same name as make up"
    assert settings.kafka_bootstrap == "kafka:9092"


def test_one_dockerfile_builds_every_service():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert 'uv sync --frozen --no-dev --package "kontor-${SERVICE}"' in dockerfile
    exposed = dockerfile.split("\nEXPOSE ", 1)[1].splitlines()[0].split()
    assert sorted(exposed) == sorted(str(p) for p in [PORTAL_PORT, *(s.default_port for s in SPECS)])
    assert 'exec kontor-\\"$KONTOR_SERVICE\\"' in dockerfile
    for name in [*(spec.name for spec in SPECS), "portal"]:  # the entrypoint runs kontor-<service>: each package
        assert f'kontor-{name} = "kontor_{name}.__main__:main"' in \
            (ROOT / "services" / name / "pyproject.toml").read_text()  # must declare that script
        assert f"COPY services/{name}/pyproject.toml" in dockerfile, "its dependencies in the first layer"
    # the invoicing image renders PDFs with WeasyPrint: Pango, HarfBuzz-subset and fonts must be in it
    for package in ("libpangoft2-1.0-0", "libharfbuzz-subset0", "fonts-dejavu-core"):
        assert package in dockerfile


def test_default_ports_are_the_documented_ones():
    assert {s.name: s.default_port for s in SPECS} == {
        "orders": 8101, "clients": 8102, "invoicing": 8103, "notifications": 8104}


def defaults(env: dict[str, str]) -> dict[str, str]:
    """The values compose gives when no variable is set (${X:-default} and ${X:-default}/rest)."""
    return {k: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(v)) for k, v in env.items()}


def test_services_verify_the_realms_tokens_and_the_portal_signs_in_there(compose):
    """One issuer everywhere (the address browsers use, KC_HOSTNAME), the keys and the discovery document from
    the keycloak service inside; the HS256 development tokens only when asked for (development only)."""
    services = compose["services"]
    keycloak = defaults(services["keycloak"]["environment"])
    issuer = keycloak["KC_HOSTNAME"] + "/realms/kontor"
    assert issuer == "http://127.0.0.1:8180/realms/kontor"
    for spec in SPECS:
        env = defaults(services[f"{spec.name}-api"]["environment"])
        settings = spec.settings_cls(**{k.removeprefix(spec.env_prefix).lower(): v for k, v in env.items()
                                        if k.startswith(spec.env_prefix)}, environment="production",
                                     jwt_secret="k" * 48)
        assert settings.jwks_url == "http://keycloak:8080/realms/kontor/protocol/openid-connect/certs"
        assert settings.jwt_issuer == issuer and settings.jwt_audience == "kontor-api"
        assert settings.jwt_accept_dev_tokens is False
        assert services[f"{spec.name}-api"]["environment"][f"{spec.env_prefix}JWT_ACCEPT_DEV_TOKENS"] == \
            "${JWT_ACCEPT_DEV_TOKENS:-false}"
    portal = services["portal"]
    env = portal["environment"]
    assert env["KONTOR_PORTAL_SESSION_SECRET"].startswith("${KONTOR_PORTAL_SESSION_SECRET:?"), "no default secret"
    values = defaults({k: v for k, v in env.items() if k.startswith("KONTOR_PORTAL_")})
    fields = set(PortalSettings.model_fields)
    assert all(k.removeprefix("KONTOR_PORTAL_").lower() in fields for k in values), values
    settings = PortalSettings(**{k.removeprefix("KONTOR_PORTAL_").lower(): v for k, v in values.items()
                                 if k != "KONTOR_PORTAL_SESSION_SECRET"}, session_secret="s" * 48,
                              environment="production")
    assert settings.oidc_issuer == issuer
    assert settings.oidc_discovery_url == "http://keycloak:8080/realms/kontor/.well-known/openid-configuration"
    assert {settings.orders_url, settings.clients_url, settings.invoicing_url, settings.notifications_url} == {
        f"http://{s.name}-api:{s.default_port}" for s in SPECS}
    for spec in SPECS:
        assert portal["depends_on"][f"{spec.name}-api"]["condition"] == "service_healthy"
    assert portal["command"] == ["api"] and portal["restart"] == "unless-stopped"
    assert portal["build"]["args"]["SERVICE"] == "portal" and portal["image"] == "kontor-portal"
    assert portal["ports"] == [f"127.0.0.1:${{PORTAL_PORT:-{PORTAL_PORT}}}:{settings.http_port}"]
    assert f"127.0.0.1:{settings.http_port}/healthz" in portal["healthcheck"]["test"][-1]
    # the realm's portal client lets the portal's default address sign in
    (client,) = [c for c in json.loads(REALM.read_text())["clients"] if c["clientId"] == "kontor-portal"]
    assert f"{settings.public_base_url}/*" in client["redirectUris"]


def test_keycloak_runs_the_projects_version_with_the_realm_file_and_its_database(compose):
    keycloak = compose["services"]["keycloak"]
    assert KEYCLOAK_VERSION is not None
    assert keycloak["image"] == f"${{KEYCLOAK_IMAGE:-quay.io/keycloak/keycloak:{KEYCLOAK_VERSION.group(1)}}}"
    assert keycloak["command"] == ["start", "--import-realm"]
    assert keycloak["volumes"] == ["./deploy/keycloak/kontor-realm.json:/opt/keycloak/data/import/kontor-realm.json:ro"]
    env = keycloak["environment"]
    assert env["KC_DB"] == "postgres" and env["KC_DB_URL"] == "jdbc:postgresql://postgres:5432/keycloak"
    assert env["KC_HEALTH_ENABLED"] == "true" and env["KC_HTTP_PORT"] == "8080"
    assert keycloak["ports"] == ["127.0.0.1:${KEYCLOAK_PORT:-8180}:8080"]
    assert keycloak["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "/health/ready" in keycloak["healthcheck"]["test"][-1] and "9000" in keycloak["healthcheck"]["test"][-1]
    assert keycloak["restart"] == "unless-stopped"
    from kontor.testing.containers import LOCAL_IMAGES

    assert LOCAL_IMAGES["keycloak"] == f"localhost/kontor-keycloak:{KEYCLOAK_VERSION.group(1)}", "containers.sh's tag"

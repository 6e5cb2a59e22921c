"""compose.yaml's consistency with the code: every service has its migration job, API and worker,
with the ports, env prefixes and databases the code uses by default; images and published ports are
parameters with the official images and the documented ports as defaults. (That it runs:
tests/test_containers_compose.py.)"""
import re
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

from kontor_clients.spec import SPEC as CLIENTS
from kontor_invoicing.spec import SPEC as INVOICING
from kontor_notifications.spec import SPEC as NOTIFICATIONS
from kontor_orders.spec import SPEC as ORDERS

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[1]
SPECS = [ORDERS, CLIENTS, INVOICING, NOTIFICATIONS]


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
    assert sorted(re.findall(r"CREATE DATABASE (\w+);", init)) == sorted(f"kontor_{s.name}" for s in SPECS)


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
    assert sorted(exposed) == sorted(str(s.default_port) for s in SPECS)
    assert 'exec kontor-\\"$KONTOR_SERVICE\\"' in dockerfile
    for spec in SPECS:  # the entrypoint runs kontor-<service>: each package must declare that script
        assert f'kontor-{spec.name} = "kontor_{spec.name}.__main__:main"' in \
            (ROOT / "services" / spec.name / "pyproject.toml").read_text()
    # the invoicing image renders PDFs with WeasyPrint: Pango, HarfBuzz-subset and fonts must be in it
    for package in ("libpangoft2-1.0-0", "libharfbuzz-subset0", "fonts-dejavu-core"):
        assert package in dockerfile


def test_default_ports_are_the_documented_ones():
    assert {s.name: s.default_port for s in SPECS} == {
        "orders": 8101, "clients": 8102, "invoicing": 8103, "notifications": 8104}

"""What every service must do, checked for all four against real PostgreSQL and Kafka:
health and readiness, not ready while Kafka is unreachable, migrations matching the models."""
import pytest

from kontor.testing import checks
from kontor_clients.spec import SPEC as CLIENTS
from kontor_invoicing.spec import SPEC as INVOICING
from kontor_notifications.spec import SPEC as NOTIFICATIONS
from kontor_orders.spec import SPEC as ORDERS

pytestmark = pytest.mark.integration
SPECS = pytest.mark.parametrize("spec", [ORDERS, CLIENTS, INVOICING, NOTIFICATIONS], ids=lambda s: s.name)


@SPECS
async def test_health_readiness_and_openapi(infra, topic_prefix, spec):
    await checks.check_health_and_readiness(spec, infra, topic_prefix)


@SPECS
async def test_not_ready_while_kafka_is_unreachable(infra, spec):
    await checks.check_not_ready_without_kafka(spec, infra)


@SPECS
async def test_migrations_create_what_the_models_declare(infra, spec):
    await checks.check_migrations_match_models(spec, infra)

"""The orders service's basics against real PostgreSQL and Kafka."""
import pytest

from kontor.testing import checks
from kontor_orders.spec import SPEC

pytestmark = pytest.mark.integration


async def test_health_readiness_and_openapi(infra, topic_prefix):
    await checks.check_health_and_readiness(SPEC, infra, topic_prefix)


async def test_not_ready_while_kafka_is_unreachable(infra):
    await checks.check_not_ready_without_kafka(SPEC, infra)


async def test_migrations_create_what_the_models_declare(infra):
    await checks.check_migrations_match_models(SPEC, infra)

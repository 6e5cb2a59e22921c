"""The backbone tests (tests/test_slice.py) and the whole journey (tests/test_journey.py) once more,
on Kafka and PostgreSQL in containers started through testcontainers (podman's Docker API here,
the images `make images` built unless KONTOR_TEST_KAFKA_IMAGE / KONTOR_TEST_POSTGRES_IMAGE say
otherwise). The tests are the same functions, imported, with this module's `infra`."""
from __future__ import annotations

import pytest
from containers_support import require_engine
from test_journey import test_the_whole_journey_across_all_four_services  # noqa: F401 - collected here again
from test_slice import (  # noqa: F401 - collected here again
    test_bad_client_input_names_the_field,
    test_client_registered_on_clients_is_accepted_by_orders,
    test_orders_read_model_follows_registration_update_and_standing,
    test_requests_without_a_valid_token_are_refused,
    test_updates_of_one_client_reach_orders_in_order,
)

from kontor.testing import provide_infra

pytestmark = [pytest.mark.containers, pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def infra():
    require_engine("kafka", "postgres")
    provided = provide_infra("testcontainers")
    print(f"\n[kontor] test infrastructure from {provided.source}: kafka={provided.kafka_bootstrap} "
          f"postgres={provided.postgres_admin_url} timings={ {k: round(v, 2) for k, v in provided.timings.items()} }")
    assert provided.source.startswith("testcontainers")
    yield provided
    provided.close()

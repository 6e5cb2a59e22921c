"""Root conftest: the real infrastructure for every test directory (see kontor.testing)."""
import os

import pytest

# The tests mint tokens with the development secret, which only a development environment accepts;
# the processes they start inherit it.
os.environ["KONTOR_ENV"] = "development"

from kontor.logging import configure_logging


def pytest_configure(config):
    configure_logging("WARNING", "console")
    config.addinivalue_line("markers", "containers: runs containers (podman or Docker; `make images` first); "
                                       "select with -m containers")


@pytest.fixture(scope="session")
def infra():
    from kontor.testing import provide_infra

    provided = provide_infra()
    print(f"\n[kontor] test infrastructure from {provided.source}: kafka={provided.kafka_bootstrap} "
          f"postgres={provided.postgres_admin_url} smtp={provided.smtp_host}:{provided.smtp_port} "
          f"timings={ {k: round(v, 2) for k, v in provided.timings.items()} }")
    yield provided
    provided.close()


@pytest.fixture
def topic_prefix():
    from kontor.testing import unique

    return unique("t") + "."

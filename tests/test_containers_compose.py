"""compose.yaml for real: brought up with the images `make images` built, as a project of its own
on free ports of 127.0.0.1 (others' Kafka and PostgreSQL keep 19092 and 15432); every container is
healthy (the migration jobs exited 0); the journey `make demo` runs (deploy/demo.py, i.e.
tests/test_journey.py's `journey`) passes through the published ports, the e-mails read from the
mail catcher's HTTP API; then everything is torn down and no container, volume or network of the
project is left."""
from __future__ import annotations

import sys
import time

import httpx
import pytest
from containers_support import require_engine
from test_journey import Platform, journey, official_validator

from kontor.settings import DEV_JWT_SECRET
from kontor.testing import unique
from kontor.testing.containers import compose_project, mail_copied

pytestmark = [pytest.mark.containers, pytest.mark.integration, pytest.mark.slow]
SERVICES = ("orders", "clients", "invoicing", "notifications")


class PortMapped(httpx.AsyncBaseTransport):
    """The client's browser: `host:port` as the containers name it, reached at a published port here."""

    def __init__(self, names: dict[tuple[str, int], int]) -> None:
        self.names = names
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        port = self.names.get((request.url.host, request.url.port or 80))
        if port is not None:
            request.url = request.url.copy_with(host="127.0.0.1", port=port)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.timeout(1200)
async def test_compose_up_runs_the_demo_journey_healthy_and_leaves_nothing(tmp_path):
    require_engine("kafka", "postgres", "mail", "python", "keycloak", "kontor-portal",
                   *(f"kontor-{s}" for s in SERVICES))
    # the services verify Keycloak's tokens; the journey's HS256 development tokens are accepted beside them
    project = compose_project(unique("kontor-test-"), KONTOR_JWT_SECRET=DEV_JWT_SECRET, KONTOR_ENV="development",
                              JWT_ACCEPT_DEV_TOKENS="true", KONTOR_PORTAL_SESSION_SECRET="p" * 48,
                              ALLOW_FUTURE_AS_OF="true", ORDERS_PUBLIC_URL="http://orders-api:8101")
    clients = {s: httpx.AsyncClient(base_url=project.url(f"{s.upper()}_PORT"), timeout=60) for s in SERVICES}
    try:
        project.up()
        states = {c["Names"][0].removeprefix(f"{project.name}_"): c for c in project.containers()}
        expected = {f"{s}-{role}_1" for s in SERVICES for role in ("migrate", "api", "worker")} \
            | {"kafka_1", "postgres_1", "mail_1", "keycloak_1", "portal_1"}
        assert set(states) == expected
        for name, c in states.items():
            if "-migrate" in name:
                assert (c["State"], c["ExitCode"]) == ("exited", 0), (name, c["Status"])
            else:
                assert c["State"] == "running" and c["Status"].endswith("(healthy)"), (name, c["Status"])

        said: list[str] = []
        started = time.monotonic()
        async with mail_copied(project.url("MAIL_UI_PORT"), tmp_path / "mail") as copied:
            browser = lambda: httpx.AsyncClient(  # noqa: E731 - the journey opens one per link
                transport=PortMapped({("orders-api", 8101): project.ports["ORDERS_PORT"]}))
            outcome = await journey(Platform(clients["clients"], clients["orders"], clients["invoicing"],
                                             clients["notifications"], tmp_path / "mail", said.append,
                                             official_validator(), browser=browser), unique("")[:8])
            mails = copied()
        journey_s = time.monotonic() - started
        print("\n".join(said), file=sys.stderr)
        print(f"[compose] up {project.timings['up_s']:.1f} s, journey {journey_s:.1f} s, {mails} e-mails",
              file=sys.stderr)
        assert len(outcome["invoices"]) == 3 and outcome["emails"] >= 12 and mails >= 12
        # still healthy after the journey: nothing crashed and came back
        for name, c in {c["Names"][0]: c for c in project.containers()}.items():
            if "-migrate" not in name:
                restarts = project.restarts(name)
                assert c["Status"].endswith("(healthy)") and restarts == 0, (name, c["Status"], restarts)
    finally:
        for client in clients.values():
            await client.aclose()
        project.down()
        print(f"[compose] down {project.timings['down_s']:.1f} s", file=sys.stderr)
    assert project.leftovers() == {"containers": [], "volumes": [], "networks": []}

"""Keycloak's tokens at the services: the `kontor` realm of deploy/keycloak/kontor-realm.json, run
from the distribution that bootstrap fetched, and the orders service verifying RS256 tokens through
the realm's JWKS (the API tests elsewhere keep the HS256 development tokens)."""
import time
import uuid

import pytest

from kontor.auth import TokenVerifier
from kontor.devinfra.keycloak import LocalKeycloak
from kontor.testing import free_port, unique
from kontor.testing.services import token
from kontor_orders.spec import SPEC

pytestmark = pytest.mark.integration

MIA = ("mia@kontor.example", "mia-kontor-2026")
ANTON = ("anton@kontor.example", "anton-kontor-2026")
BEATE = ("beate@kontor.example", "beate-kontor-2026")


@pytest.fixture(scope="module")
def keycloak():
    kc = LocalKeycloak(port=free_port(), name="keycloak-test", fresh=True)
    started = time.monotonic()
    kc.start()
    print(f"\n[kontor] Keycloak ready after {time.monotonic() - started:.1f}s on {kc.url}")
    yield kc
    kc.stop()


def bearer(kc: LocalKeycloak, user: tuple[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {kc.password_token(*user)['access_token']}"}


async def test_keycloak_tokens_at_the_orders_service(keycloak, infra):
    from kontor.testing.services import running_service

    async with running_service(SPEC, infra, topic_prefix=unique("t") + ".", start_worker=False,
                               order_runs_enabled=False, jwks_url=keycloak.jwks_url,
                               jwt_issuer=f"http://127.0.0.1:{keycloak.port}/realms/kontor",
                               jwt_audience="kontor-api", allow_future_as_of=True) as svc:
        mia = bearer(keycloak, MIA)
        r = await svc.http.get("/orders", headers=mia)
        assert r.status_code == 200, r.text
        principal = await TokenVerifier(svc.settings).verify(mia["Authorization"][7:])  # as the service sees it
        assert principal.roles == frozenset({"member"})
        assert principal.name == "Mia Mitglied"
        assert principal.email == "mia@kontor.example"
        assert uuid.UUID(principal.sub)  # Keycloak's user id

        # an advisor route: the advisor passes, the member is refused
        run = await svc.http.post("/order-runs", json={"as_of": "2027-04-01"}, headers=bearer(keycloak, ANTON))
        assert run.status_code == 200, run.text
        assert run.json()["as_of"] == "2027-04-01"
        refused = await svc.http.post("/order-runs", json={"as_of": "2027-04-01"}, headers=mia)
        assert refused.status_code == 403, refused.text
        both = bearer(keycloak, BEATE)
        assert (await svc.http.post("/order-runs", json={"as_of": "2027-04-01"}, headers=both)).status_code == 200
        assert (await svc.http.get("/orders", headers=both)).status_code == 200

        # a token of another realm (Keycloak's master realm), an HS256 development token, a forged one
        other_realm = {"Authorization": f"Bearer {keycloak.admin_token()}"}
        assert (await svc.http.get("/orders", headers=other_realm)).status_code == 401
        dev = {"Authorization": f"Bearer {token('member-1', 'member')}"}
        assert (await svc.http.get("/orders", headers=dev)).status_code == 401
        head, payload, signature = mia["Authorization"][7:].split(".")
        forged = {"Authorization": f"Bearer {head}.{payload}.{signature[:-6]}AAAAAA"}
        assert (await svc.http.get("/orders", headers=forged)).status_code == 401


def test_a_new_user_is_a_member(keycloak):
    email = f"{unique('neu')}@kontor.example"
    keycloak.admin("POST", "/users", {
        "username": email, "email": email, "enabled": True, "firstName": "Nora", "lastName": "Neu",
        "credentials": [{"type": "password", "value": "nora-kontor-2026", "temporary": False}]})
    users = keycloak.admin("GET", f"/users?exact=true&username={email}")
    assert isinstance(users, list) and len(users) == 1
    roles = keycloak.admin("GET", f"/users/{users[0]['id']}/role-mappings/realm/composite")
    assert isinstance(roles, list)
    names = {r["name"] for r in roles}
    assert "member" in names
    assert "advisor" not in names


async def test_make_up_accepts_keycloak_and_development_tokens(keycloak):
    """`make up`'s services: Keycloak's tokens (the portal) and, in development, the HS256 tokens of
    kontor-token and make demo; only the ones of the realm and the secret."""
    from kontor.auth import InvalidToken
    from kontor.settings import ServiceSettings

    settings = ServiceSettings(environment="development", jwks_url=keycloak.jwks_url, jwt_issuer=keycloak.issuer,
                               jwt_audience="kontor-api", jwt_accept_dev_tokens=True)
    verifier = TokenVerifier(settings)
    member = await verifier.verify(keycloak.password_token(*MIA)["access_token"])
    assert member.roles == frozenset({"member"})
    assert member.email == "mia@kontor.example"
    dev = await verifier.verify(token("member-1", "member", name="Erika"))
    assert (dev.sub, dev.roles, dev.name) == ("member-1", frozenset({"member"}), "Erika")
    with pytest.raises(InvalidToken):
        await verifier.verify(keycloak.admin_token())
    import jwt
    with pytest.raises(InvalidToken):  # HS256 with another secret
        await verifier.verify(jwt.encode({"sub": "x", "roles": ["advisor"], "exp": 4102444800},
                                         "another-secret-of-32-characters!", algorithm="HS256"))
    with pytest.raises(ValueError, match="development only"):
        ServiceSettings(environment="production", jwks_url=keycloak.jwks_url, jwt_accept_dev_tokens=True)

"""Keycloak's tokens at the services: the `kontor` realm of deploy/keycloak/kontor-realm.json, run
from the distribution that bootstrap fetched, and the orders service verifying RS256 tokens through
the realm's JWKS (the API tests elsewhere keep the HS256 development tokens)."""
import base64
import hashlib
import html
import re
import secrets
import time
import urllib.parse
import uuid

import httpx
import pytest

from kontor.auth import TokenVerifier
from kontor.devinfra import port_open
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
    port = free_port()
    while port_open("127.0.0.1", port + 1):  # its management interface listens on port + 1
        port = free_port()
    kc = LocalKeycloak(port=port, name="keycloak-test", fresh=True)
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


class Browser:
    """Just enough of a browser for Keycloak's pages: its cookies are `Secure` (which browsers keep for
    http://127.0.0.1, httpx does not), so they are sent by hand."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http, self.cookies = http, {}

    def _keep(self, r: httpx.Response) -> httpx.Response:
        for header in r.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";")[0]
        return r

    def _headers(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    async def get(self, url: str, **params: str) -> httpx.Response:
        if params:  # (an empty `params` would drop the query of `url`)
            url = f"{url}?{urllib.parse.urlencode(params)}"
        return self._keep(await self.http.get(url, headers=self._headers()))

    async def submit(self, page: httpx.Response, **form: str) -> httpx.Response:
        found = re.search(r'<form[^>]*action="([^"]+)"', page.text)
        assert found, page.text[-2000:]
        return self._keep(await self.http.post(html.unescape(found.group(1)), data=form, headers=self._headers()))


async def test_sign_up_with_the_privacy_policy_and_pkce(keycloak):
    """As the portal will: authorization code with PKCE S256 on kontor-portal, the registration page
    (e-mail as user name), the privacy policy to accept, the code exchanged for a token with role member."""
    endpoint = f"{keycloak.issuer}/protocol/openid-connect"
    redirect = "http://127.0.0.1:8100/auth/callback"
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    email = f"{unique('nina')}@kontor.example"
    async with httpx.AsyncClient(timeout=30) as http:
        browser = Browser(http)
        without_pkce = await browser.get(f"{endpoint}/auth", client_id="kontor-portal", response_type="code",
                                         scope="openid", redirect_uri=redirect, state="s0")
        assert without_pkce.status_code == 302
        assert "error=invalid_request" in without_pkce.headers["location"]

        form = await browser.get(f"{endpoint}/registrations", client_id="kontor-portal", response_type="code",
                                 scope="openid", redirect_uri=redirect, state="s1", code_challenge=challenge,
                                 code_challenge_method="S256", ui_locales="en")
        assert form.status_code == 200
        assert set(re.findall(r'<input[^>]*name="([^"]+)"', form.text)) >= {
            "email", "password", "password-confirm", "firstName", "lastName"}
        assert 'name="username"' not in form.text  # the e-mail is the user name
        registered = await browser.submit(form, email=email, firstName="Nina", lastName="Neu",
                                          password="nina-kontor-2026", **{"password-confirm": "nina-kontor-2026"})
        assert registered.status_code == 302, registered.text[-2000:]
        assert "execution=TERMS_AND_CONDITIONS" in registered.headers["location"]
        terms = await browser.get(registered.headers["location"])
        assert "Privacy policy" in terms.text
        assert "processes your name and e-mail address" in terms.text
        accepted = await browser.submit(terms, accept="")
        assert accepted.status_code == 302
        back = urllib.parse.urlsplit(accepted.headers["location"])
        assert f"{back.scheme}://{back.netloc}{back.path}" == redirect
        query = urllib.parse.parse_qs(back.query)
        assert query["state"] == ["s1"]
        tokens = await http.post(f"{endpoint}/token", data={
            "grant_type": "authorization_code", "client_id": "kontor-portal", "code": query["code"][0],
            "redirect_uri": redirect, "code_verifier": verifier})
        assert tokens.status_code == 200, tokens.text
    from kontor.settings import ServiceSettings

    verifier_ = TokenVerifier(ServiceSettings(environment="development", jwks_url=keycloak.jwks_url,
                                              jwt_issuer=keycloak.issuer, jwt_audience="kontor-api"))
    principal = await verifier_.verify(tokens.json()["access_token"])
    assert principal.roles == frozenset({"member"})
    assert (principal.email, principal.name) == (email, "Nina Neu")


async def test_members_change_their_e_mail_and_language_in_the_account_console(keycloak):
    """The settings the seeds describe: e-mail and language are the user's to change (Keycloak's
    account console, its REST API behind it); German and English are offered."""
    me = {"Authorization": f"Bearer {keycloak.password_token(*MIA)['access_token']}", "Accept": "application/json"}
    async with httpx.AsyncClient(timeout=30) as http:
        r = await http.get(f"{keycloak.issuer}/account/", params={"userProfileMetadata": "true"}, headers=me)
        assert r.status_code == 200, r.text
        account = r.json()
        attributes = {a["name"]: a for a in account["userProfileMetadata"]["attributes"]}
        assert attributes["firstName"]["readOnly"] is False
        assert attributes["email"]["readOnly"] is True  # changed through the action "Update Email" below
        assert account["attributes"]["locale"] == ["de"]

        # the portal's "change e-mail": an authorization request with kc_action=UPDATE_EMAIL
        browser = Browser(http)
        login = await browser.get(f"{keycloak.issuer}/protocol/openid-connect/auth", client_id="kontor-portal",
                                  response_type="code", scope="openid", state="s2",
                                  redirect_uri="http://127.0.0.1:8100/auth/callback",
                                  code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                                  code_challenge_method="S256", kc_action="UPDATE_EMAIL")
        assert '<html class="login-pf" lang="de"' in login.text  # German unless asked otherwise
        english = await Browser(http).get(f"{keycloak.issuer}/protocol/openid-connect/auth", client_id="kontor-portal",
                                          response_type="code", scope="openid", ui_locales="en",
                                          redirect_uri="http://127.0.0.1:8100/auth/callback",
                                          code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                                          code_challenge_method="S256")
        assert '<html class="login-pf" lang="en"' in english.text
        update = await browser.submit(login, username=ANTON[0], password=ANTON[1])
        if update.status_code == 302:
            update = await browser.get(update.headers["location"])
        assert 'name="email"' in update.text, update.text[-2000:]
        done = await browser.submit(update, email="anton.berater@kontor.example")
        assert done.status_code == 302, done.text[-2000:]
        assert done.headers["location"].startswith("http://127.0.0.1:8100/auth/callback?")
    users = keycloak.admin("GET", "/users?exact=true&email=anton.berater@kontor.example")
    assert isinstance(users, list) and [u["username"] for u in users] == ["anton.berater@kontor.example"]

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


async def test_the_notifications_service_account_has_only_the_scope_documents_read(keycloak):
    """`kontor-notifications` (client credentials, deploy/keycloak/kontor-realm.json): its token has no
    role, the audience of the APIs and `documents:read` among the scopes Keycloak adds; the client has
    no other grant."""
    import jwt

    from kontor.devinfra import InfraError
    from kontor.devinfra.keycloak import NOTIFICATIONS_CLIENT, NOTIFICATIONS_DEV_SECRET, _post_form
    from kontor.settings import ServiceSettings

    issued = keycloak.client_credentials_token()
    assert "documents:read" in issued["scope"].split(), issued["scope"]
    claims = jwt.decode(issued["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "kontor-api" or "kontor-api" in claims["aud"]
    assert claims["azp"] == NOTIFICATIONS_CLIENT
    assert claims.get("roles") in (None, [])
    principal = await TokenVerifier(ServiceSettings(environment="production", jwks_url=keycloak.jwks_url,
                                                    jwt_issuer=keycloak.issuer, jwt_audience="kontor-api")
                                    ).verify(issued["access_token"])
    assert principal.roles == frozenset()
    assert principal.scopes == frozenset({"documents:read"}) and principal.reads_all_documents
    assert principal.actor.kind == "system"

    # its service account has no realm role (not even the default `member`)
    [client] = keycloak.admin("GET", f"/clients?clientId={NOTIFICATIONS_CLIENT}")
    account = keycloak.admin("GET", f"/clients/{client['id']}/service-account-user")
    roles = keycloak.admin("GET", f"/users/{account['id']}/role-mappings/realm/composite")
    assert not {r["name"] for r in roles} & {"member", "advisor"}, roles
    assert (client["standardFlowEnabled"], client["directAccessGrantsEnabled"], client["publicClient"]) == \
        (False, False, False)
    with pytest.raises(InfraError, match=r"unauthorized_client|invalid_grant"):  # no password grant
        _post_form(keycloak.token_url, {"grant_type": "password", "client_id": NOTIFICATIONS_CLIENT,
                                        "client_secret": NOTIFICATIONS_DEV_SECRET,
                                        "username": MIA[0], "password": MIA[1]})
    with pytest.raises(InfraError, match="401"):  # a wrong secret
        keycloak.client_credentials_token(secret="not-the-secret")


async def test_invoice_e_mails_fetch_their_documents_with_client_credentials(keycloak, infra, topic_prefix):
    """All four services verify through the realm's JWKS only (no development tokens): a member and an
    advisor of Keycloak issue an invoice; the client-credentials token of kontor-notifications downloads
    its PDF and nothing else; notifications, with those client credentials, sends the invoice e-mail
    with the PDF and the X-Rechnung through the SMTP server, byte for byte as invoicing stored them."""
    import datetime as dt

    from kontor.clock import FixedClock
    from kontor.devinfra.keycloak import NOTIFICATIONS_DEV_SECRET
    from kontor.devinfra.smtp import read_messages
    from kontor.testing import eventually
    from kontor.testing.services import draft_of_active_order, ok, running_service
    from kontor_clients.spec import SPEC as CLIENTS
    from kontor_invoicing.spec import SPEC as INVOICING
    from kontor_notifications.adapters.documents import DocumentFetcher
    from kontor_notifications.domain.model import DocumentRef
    from kontor_notifications.spec import SPEC as NOTIFICATIONS

    if infra.maildir is None:
        pytest.skip("the SMTP server's Maildir is not readable here (KONTOR_TEST_MAILDIR unset)")
    run = uuid.uuid4().hex[:8]
    billing = f"rechnung.{run}@acme.example"
    common = {"topic_prefix": topic_prefix, "jwks_url": keycloak.jwks_url, "jwt_issuer": keycloak.issuer,
              "jwt_audience": "kontor-api", "jwt_accept_dev_tokens": False}
    async with running_service(CLIENTS, infra, **common, standing_run_enabled=False) as clients, \
            running_service(SPEC, infra, **common, serve_http=True, order_runs_enabled=False) as orders, \
            running_service(INVOICING, infra, **common, serve_http=True, billing_runs_enabled=False,
                            clock=FixedClock(dt.datetime(2027, 3, 1, 9, tzinfo=dt.UTC))) as invoicing, \
            running_service(NOTIFICATIONS, infra, **common, smtp_host=infra.smtp_host, smtp_port=infra.smtp_port,
                            delivery_interval_s=0.1, retry_base_s=0.2, oidc_token_url=keycloak.token_url,
                            oidc_client_secret=NOTIFICATIONS_DEV_SECRET) as notifications:
        # (Beate approves: the account-console test changes Anton's e-mail, his user name)
        mia, advisor = bearer(keycloak, MIA), bearer(keycloak, BEATE)
        client = await ok(clients.http.post("/clients", headers=mia, json={
            "kind": "company", "name": f"ACME {run} GmbH", "invoice_email": billing, "language": "de",
            "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}}))
        body = {
            "client_id": client["id"], "contact_person": {"name": "Erika Muster", "email": billing},
            "sector": "design", "place_of_service": "DE", "project_name": "Relaunch 2027",
            "description": "Website", "currency": "EUR",
            "lines": [{"description": "Workshop", "quantity": "2", "unit": "day", "unit_price": "640.00"}],
            "service_period": {"start": "2027-02-01", "end": "2027-02-28"},
            "confirmation": {"mode": "skip", "skip_reason": "Rahmenvertrag"},
            "payment": {"mode": "after_completion", "due_in_days": 14, "invoice_date": "2027-03-05"}}
        _, draft = await draft_of_active_order(orders.http, invoicing.http, body, member=mia, advisor=advisor,
                                              as_of="2027-03-01")
        iid = draft["invoice_id"]
        await ok(invoicing.http.post(f"/invoices/{iid}/issue", headers=mia), 202)

        async def issued():
            inv = await ok(invoicing.http.get(f"/invoices/{iid}", headers=mia))
            return inv if inv["status"] == "invoiced" else None
        invoice = await eventually(issued, timeout_s=90, what="the invoice issued")
        [pdf] = [d for d in invoice["documents"] if d["kind"] == "pdf"]

        # the service's token: the PDF, and no route that needs a role; the member's token as before
        service = {"Authorization": f"Bearer {keycloak.client_credentials_token()['access_token']}"}
        download = await invoicing.http.get(pdf["url"], headers=service)
        assert download.status_code == 200, download.text
        assert download.content.startswith(b"%PDF") and hashlib.sha256(download.content).hexdigest() == pdf["sha256"]
        refused = await invoicing.http.get("/invoices", headers=service)
        assert refused.status_code == 403 and "no Kontor role" in refused.text, refused.text
        assert (await invoicing.http.get(f"/invoices/{iid}", headers=service)).status_code == 403
        assert (await orders.http.get("/orders", headers=service)).status_code == 403
        assert (await invoicing.http.get(pdf["url"], headers=mia)).status_code == 200
        assert (await invoicing.http.get(pdf["url"], headers={"Authorization": f"Bearer {token('x')}"})
                ).status_code == 401  # the HS256 development token: refused without jwt_accept_dev_tokens

        # the e-mail notifications sent, its documents fetched with its own client-credentials token
        async def received():
            return [m for m in read_messages(infra.maildir)
                    if billing in m.get("X-Kontor-Envelope-To", "") and invoice["number"] in m["Subject"]] or None
        [mail] = await eventually(received, timeout_s=90, what="the invoice e-mail at the client")
        sent = {part.get_filename(): part.get_content() for part in mail.iter_attachments()}
        assert hashlib.sha256(sent[pdf["filename"]]).hexdigest() == pdf["sha256"], list(sent)
        [xml] = [d for d in invoice["documents"] if d["kind"] == "xrechnung"]
        assert hashlib.sha256(sent[xml["filename"]]).hexdigest() == xml["sha256"], list(sent)

        # a token the documents' owner refuses (401) is replaced by a new one at once
        fetcher = DocumentFetcher(notifications.settings)
        try:
            head, payload, signature = service["Authorization"][7:].split(".")
            fetcher.oauth.token = {"access_token": f"{head}.{payload}.{signature[:-6]}AAAAAA",
                                   "token_type": "Bearer", "expires_at": int(time.time()) + 600}
            got = await fetcher.fetch(DocumentRef(pdf["filename"], "application/pdf", pdf["sha256"], pdf["url"]))
            assert hashlib.sha256(got).hexdigest() == pdf["sha256"]
            kept = fetcher.oauth.token["access_token"]
            assert kept.split(".")[2] != f"{signature[:-6]}AAAAAA"
            await fetcher.fetch(DocumentRef(pdf["filename"], "application/pdf", pdf["sha256"], pdf["url"]))
            assert fetcher.oauth.token["access_token"] == kept  # kept while it is valid
            fetcher.oauth.token["expires_at"] = int(time.time()) + 10  # within the leeway: replaced first
            await fetcher.fetch(DocumentRef(pdf["filename"], "application/pdf", pdf["sha256"], pdf["url"]))
            assert fetcher.oauth.token["access_token"] != kept
        finally:
            await fetcher.close()


async def test_make_up_gives_notifications_the_client_credentials(keycloak):
    """deploy/stack.py: with Keycloak, notifications gets the token URL, client id and secret of the
    realm's kontor-notifications, and with them a token that fetches documents; a realm without that
    client leaves notifications on the development tokens."""
    import importlib.util
    from pathlib import Path

    from kontor_notifications.adapters.documents import DocumentFetcher
    from kontor_notifications.settings import NotificationsSettings

    path = Path(__file__).parents[1] / "deploy" / "stack.py"
    spec = importlib.util.spec_from_file_location("kontor_stack_under_test", path)
    assert spec and spec.loader
    stack_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stack_module)
    stack = stack_module.Stack(keycloak=True)
    stack.keycloak = keycloak
    assert "KONTOR_NOTIFICATIONS_OIDC_TOKEN_URL" not in stack.service_env(stack_module.NOTIFICATIONS)
    stack.client_credentials = keycloak.ensure_documents_scope()
    env = stack.service_env(stack_module.NOTIFICATIONS)
    assert env["KONTOR_NOTIFICATIONS_OIDC_TOKEN_URL"] == keycloak.token_url
    settings = NotificationsSettings(oidc_token_url=env["KONTOR_NOTIFICATIONS_OIDC_TOKEN_URL"],
                                     oidc_client_id=env["KONTOR_NOTIFICATIONS_OIDC_CLIENT_ID"],
                                     oidc_client_secret=env["KONTOR_NOTIFICATIONS_OIDC_CLIENT_SECRET"])
    fetcher = DocumentFetcher(settings)
    try:
        await fetcher._new_token(fetcher.oauth)
        assert "documents:read" in fetcher.oauth.token["scope"].split()
    finally:
        await fetcher.close()
    assert "KONTOR_ORDERS_OIDC_TOKEN_URL" not in stack.service_env(stack_module.ORDERS)

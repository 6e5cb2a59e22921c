"""Secrets: the development secret only in development, one name for the shared secret, the
narrow token of a service, and confirmation links kept out of logs and headers kept whole."""
from __future__ import annotations

import logging
import logging.config

import httpx
import pytest
import uvicorn.config
from fastapi import FastAPI

from kontor.api import content_disposition
from kontor.auth import CurrentPrincipal, DocumentReader, TokenVerifier, mint_token
from kontor.logging import configure_logging
from kontor.settings import DEV_JWT_SECRET, ServiceSettings

pytestmark = pytest.mark.unit

SECRET = "a-secret-of-our-own-for-this-test-0123456789"


def settings_classes():
    from kontor_clients.settings import ClientsSettings
    from kontor_invoicing.settings import InvoicingSettings
    from kontor_notifications.settings import NotificationsSettings
    from kontor_orders.settings import OrdersSettings

    return [ClientsSettings, OrdersSettings, InvoicingSettings, NotificationsSettings]


@pytest.fixture
def production(monkeypatch):
    monkeypatch.delenv("KONTOR_ENV", raising=False)
    monkeypatch.delenv("KONTOR_JWT_SECRET", raising=False)


@pytest.mark.parametrize("cls", settings_classes(), ids=lambda c: c.__name__)
def test_outside_development_no_service_starts_with_the_development_secret(production, cls):
    with pytest.raises(ValueError, match="development JWT secret"):
        cls()
    with pytest.raises(ValueError, match="at least 32"):
        cls(jwt_secret="short")
    assert cls(environment="development").jwt_secret.get_secret_value() == DEV_JWT_SECRET
    assert cls(jwks_url="https://idp.example/jwks").jwks_url  # RS256: no shared secret at all


@pytest.mark.parametrize("cls", settings_classes(), ids=lambda c: c.__name__)
def test_every_service_reads_the_shared_secret_and_environment_under_one_name(production, monkeypatch, cls):
    monkeypatch.setenv("KONTOR_JWT_SECRET", SECRET)
    assert cls().jwt_secret.get_secret_value() == SECRET
    monkeypatch.delenv("KONTOR_JWT_SECRET")
    monkeypatch.setenv("KONTOR_ENV", "development")
    assert cls().environment == "development"


def documents_app() -> FastAPI:
    app = FastAPI()
    app.state.token_verifier = TokenVerifier(ServiceSettings(jwt_secret=SECRET))

    @app.get("/invoices/1/pdf")
    async def pdf(principal: DocumentReader) -> dict:
        return {"sub": principal.sub, "all": principal.reads_all_documents, "advisor": principal.is_advisor}

    @app.get("/invoices")
    async def invoices(principal: CurrentPrincipal) -> dict:
        return {"sub": principal.sub}

    return app


async def test_a_service_token_reads_documents_and_nothing_else():
    service = mint_token(SECRET, "kontor-notifications", [], scopes=["documents:read"])
    member = mint_token(SECRET, "m-1", ["member"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=documents_app()), base_url="http://t") as c:
        def get(path, token):
            return c.get(path, headers={"Authorization": f"Bearer {token}"})

        r = await get("/invoices/1/pdf", service)
        assert r.status_code == 200 and r.json() == {"sub": "kontor-notifications", "all": True, "advisor": False}
        r = await get("/invoices", service)
        assert r.status_code == 403 and "no Kontor role" in r.json()["detail"]
        assert (await get("/invoices/1/pdf", member)).json() == {"sub": "m-1", "all": False, "advisor": False}
        assert (await get("/invoices", member)).status_code == 200
        nothing = mint_token(SECRET, "x", [])
        assert (await get("/invoices/1/pdf", nothing)).status_code == 403
    with pytest.raises(ValueError, match="unknown scopes"):
        mint_token(SECRET, "x", [], scopes=["everything"])


async def test_a_user_with_both_roles_acts_in_the_one_the_kontor_role_header_names():
    app = FastAPI()
    app.state.token_verifier = TokenVerifier(ServiceSettings(jwt_secret=SECRET))

    @app.get("/me")
    async def me(principal: CurrentPrincipal) -> dict:
        return {"roles": sorted(principal.roles), "advisor": principal.is_advisor}

    @app.get("/invoices/1/pdf")
    async def pdf(principal: DocumentReader) -> dict:
        return {"roles": sorted(principal.roles)}

    both = mint_token(SECRET, "beate", ["member", "advisor"])
    member = mint_token(SECRET, "mia", ["member"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        async def get(token, role=None, path="/me"):
            headers = {"Authorization": f"Bearer {token}"} | ({"Kontor-Role": role} if role else {})
            return await c.get(path, headers=headers)

        assert (await get(both)).json() == {"roles": ["advisor", "member"], "advisor": True}
        assert (await get(both, "member")).json() == {"roles": ["member"], "advisor": False}
        assert (await get(both, "advisor")).json() == {"roles": ["advisor"], "advisor": True}
        assert (await get(both, "member", "/invoices/1/pdf")).json() == {"roles": ["member"]}
        # the header only narrows: a role the token does not carry, or none Kontor knows, is refused
        for token, role in ((member, "advisor"), (both, "admin"), (both, "")):
            r = await get(token, role or " ")
            assert r.status_code == 403 and "Kontor-Role" in r.json()["detail"], (role, r.text)


async def test_development_tokens_beside_a_jwks_are_read_with_or_without_the_audience():
    """Under compose and `make up` in development the services verify Keycloak's tokens and also the
    HS256 ones: kontor-token's carry no audience, notifications' document token carries the configured
    one (it was refused, so confirmation e-mails with an attachment were never sent)."""
    from kontor.auth import InvalidToken

    verifier = TokenVerifier(ServiceSettings(environment="development", jwt_secret=SECRET,
                                             jwks_url="http://127.0.0.1:9/certs", jwt_audience="kontor-api",
                                             jwt_accept_dev_tokens=True))
    service = mint_token(SECRET, "kontor-notifications", [], scopes=["documents:read"], audience="kontor-api")
    assert (await verifier.verify(service)).reads_all_documents
    assert (await verifier.verify(mint_token(SECRET, "m-1", ["member"]))).roles == {"member"}
    with pytest.raises(InvalidToken, match=r"(?i)audience"):
        await verifier.verify(mint_token(SECRET, "m-1", ["member"], audience="somebody-else"))


def test_confirmation_tokens_never_reach_a_log_line(capsys):
    # as an in-process uvicorn leaves its loggers: handlers of their own, not propagating, level WARNING
    logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    configure_logging("INFO", "json", service="orders")
    try:
        logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET",
                                                 "/confirm/Zt9x-SECRET_tok/documents/3", "1.1", 200)
        from kontor.logging import get_logger
        get_logger("t").info("link opened", url="http://x/confirm/Zt9x-SECRET_tok?lang=de")
    finally:
        configure_logging("WARNING", "console")
    out, err = capsys.readouterr()
    assert "Zt9x-SECRET_tok" not in out + err
    assert err.count("/confirm/[redacted]") == 2, err


@pytest.mark.parametrize("name, header", [
    ("invoice.pdf", 'attachment; filename="invoice.pdf"'),
    ("Überweisung №5.pdf",
     "attachment; filename=\"_berweisung _5.pdf\"; filename*=UTF-8''%C3%9Cberweisung%20%E2%84%965.pdf"),
    ('a"b\r\nX-Evil: 1.pdf',
     "attachment; filename=\"a_b__X-Evil: 1.pdf\"; filename*=UTF-8''a%22b%0D%0AX-Evil%3A%201.pdf"),
])
def test_download_names_follow_rfc_6266_and_cannot_break_the_header(name, header):
    assert content_disposition("attachment", name) == header
    header.encode("latin-1")  # a header value Starlette can send

"""The portal's web application: server-rendered pages over the four APIs.

Sign-in is OpenID Connect (authorization code with PKCE, Authlib's Starlette client) when
`oidc_issuer` is set; in development without it, a development sign-in mints the HS256
development token (`dev_tokens`, injectable for tests). The session cookie (signed, HttpOnly,
SameSite=Lax, Secure behind https) holds the user's access token, which every API call
carries: the services decide what the user sees, a 404 from them is the portal's not-found page.
Every form post carries the session's CSRF token.
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import jwt
from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse
from starlette.middleware.sessions import SessionMiddleware

from kontor.auth import mint_token
from kontor.html import security_headers
from kontor.logging import get_logger
from kontor_portal import i18n
from kontor_portal.adapters.apis import ApiError, ApiNotFound, Apis, ApiUnauthorized, ApiUnavailable
from kontor_portal.entrypoints import advisor_pages, invoice_pages, member_pages, order_pages, settings_pages
from kontor_portal.entrypoints.web import CsrfFailed, SignInRequired, Web, WrongRole, environment
from kontor_portal.settings import PortalSettings

log = get_logger(__name__)
SESSION_COOKIE = "kontor_portal_session"
ID_TOKEN_COOKIE = "kontor_portal_idt"  # noqa: S105 - the name of a cookie, no secret
USER_ID = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
# the page modules, each adding its routes with register(app, web); order_pages first: /orders/new before
# /orders/{id}; invoice_pages before member_pages: /invoices/{id}/pdf/inline before /invoices/{id}/{document}
PAGES = (order_pages, invoice_pages, member_pages, advisor_pages, settings_pages)

# (user id, roles, display name) -> a bearer token the four APIs accept
DevTokens = Callable[[str, list[str], str | None], str]


def _safe_next(value: str | None) -> str:
    """Only a path of the portal itself (no //host, no scheme): no open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or urlsplit(value).netloc:
        return "/dashboard"
    return value


def create_app(settings: PortalSettings | None = None, *, transport: httpx.AsyncBaseTransport | None = None,
               dev_tokens: DevTokens | None = None) -> FastAPI:
    settings = settings or PortalSettings()
    apis = Apis.create({"clients": settings.clients_url, "orders": settings.orders_url,
                        "invoicing": settings.invoicing_url, "notifications": settings.notifications_url},
                       settings.api_timeout_s, transport)
    secret = settings.dev_jwt_secret.get_secret_value()
    mint: DevTokens = dev_tokens or (lambda sub, roles, name: mint_token(secret, sub, roles, name=name))

    oauth: Any = None
    form_action_extra = ""
    if settings.oidc_issuer:
        from authlib.integrations.starlette_client import OAuth

        oauth = OAuth()
        oauth.register(
            "kontor", client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None,
            server_metadata_url=settings.oidc_discovery_url
            or settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs={"scope": settings.oidc_scope, "code_challenge_method": "S256"})
        issuer = urlsplit(settings.oidc_issuer)
        form_action_extra = f" {issuer.scheme}://{issuer.netloc}"  # sign-out posts, then goes to the provider

    def headers() -> dict[str, str]:
        h = security_headers(forms=True)
        h["Content-Security-Policy"] += "; object-src 'self'; frame-src 'self'"  # the invoice's PDF, shown inline
        # the portal's own scripts (htmx, /static/) and their requests to the portal only
        h["Content-Security-Policy"] += "; script-src 'self'; connect-src 'self'"
        if form_action_extra:
            h["Content-Security-Policy"] = h["Content-Security-Policy"].replace(
                "form-action 'self'", "form-action 'self'" + form_action_extra)
        return h

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await apis.aclose()

    app = FastAPI(title="Kontor portal", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    web = Web(settings, environment(), apis)
    page, check_csrf = web.page, web.check_csrf

    @app.middleware("http")
    async def secure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in headers().items():
            response.headers.setdefault(name, value)
        return response

    # added after the header middleware, so it runs first (the session exists for every handler)
    app.add_middleware(SessionMiddleware, secret_key=settings.session_secret.get_secret_value(),
                       session_cookie=SESSION_COOKIE, max_age=settings.session_max_age_s, same_site="lax",
                       https_only=settings.secure_cookies)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _exc: SignInRequired) -> Response:
        return RedirectResponse("/signin?" + urlencode({"next": _safe_next(request.url.path)}), status_code=303)

    @app.exception_handler(ApiUnauthorized)
    async def _expired(request: Request, _exc: ApiUnauthorized) -> Response:
        request.session.pop("token", None)
        request.session.pop("user", None)
        return RedirectResponse("/signin?" + urlencode({"next": _safe_next(request.url.path)}), status_code=303)

    @app.exception_handler(ApiNotFound)
    async def _not_found(request: Request, _exc: ApiNotFound) -> Response:
        return page(request, "not_found.html", status_code=404)

    @app.exception_handler(WrongRole)
    async def _wrong_role(request: Request, _exc: WrongRole) -> Response:
        return page(request, "not_found.html", status_code=404)

    @app.exception_handler(404)
    async def _no_route(request: Request, _exc: Exception) -> Response:
        return page(request, "not_found.html", status_code=404)

    @app.exception_handler(CsrfFailed)
    async def _csrf(request: Request, _exc: CsrfFailed) -> Response:
        return page(request, "error.html", status_code=403, message_key="csrf")

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        log.error("api error behind a page", service=exc.service, status=exc.status_code, path=request.url.path)
        return page(request, "error.html", status_code=502, message_key="error")

    @app.exception_handler(ApiUnavailable)
    async def _api_unavailable(request: Request, exc: ApiUnavailable) -> Response:
        log.error("api unreachable behind a page", service=exc.service, error=repr(exc.error)[:300],
                  path=request.url.path)
        response = page(request, "error.html", status_code=503, message_key="unavailable")
        response.headers["Retry-After"] = "5"
        return response

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/")
    async def home(request: Request) -> Response:
        return RedirectResponse("/dashboard" if request.session.get("token") else "/signin", status_code=303)

    # --- sign-in and sign-out -------------------------------------------------------------------------
    @app.get("/signin")
    async def signin(request: Request, next: str | None = None) -> Response:
        request.session["next"] = _safe_next(next)
        return page(request, "signin.html", oidc=oauth is not None, dev=settings.dev_sign_in,
                    status_code=200 if oauth is not None or settings.dev_sign_in else 503, errors={}, form={})

    @app.get("/signin/oidc")
    async def signin_oidc(request: Request) -> Response:
        if oauth is None:
            return page(request, "not_found.html", status_code=404)
        redirect_uri = settings.public_base_url.rstrip("/") + "/auth/callback"
        response: Response = await oauth.kontor.authorize_redirect(request, redirect_uri)
        return response

    @app.get("/auth/callback")
    async def callback(request: Request) -> Response:
        if oauth is None:
            return page(request, "not_found.html", status_code=404)
        from authlib.integrations.starlette_client import OAuthError

        try:
            token = await oauth.kontor.authorize_access_token(request)
        except OAuthError as exc:
            log.warning("sign-in refused", error=exc.error, description=exc.description)
            return page(request, "error.html", status_code=400, message_key="error")
        access = token["access_token"]
        # read for the page only (who, which roles); the APIs verify the token through the realm's JWKS
        claims = jwt.decode(access, options={"verify_signature": False})
        info = token.get("userinfo") or {}
        _signed_in(request, access, sub=str(claims.get("sub")), roles=list(claims.get("roles") or []),
                   name=info.get("name") or info.get("preferred_username"), via="oidc")
        response = RedirectResponse(_safe_next(request.session.pop("next", None)), status_code=303)
        if token.get("id_token"):
            # for the sign-out at the provider (id_token_hint): a cookie of its own, sent to /signout only,
            # since the access token and the id token together outgrow one cookie's 4 KB
            response.set_cookie(ID_TOKEN_COOKIE, token["id_token"], max_age=settings.session_max_age_s,
                                path="/signout", httponly=True, samesite="lax", secure=settings.secure_cookies)
        return response

    def _signed_in(request: Request, token: str, *, sub: str, roles: list[str], name: str | None,
                   via: str) -> None:
        keep_next = request.session.get("next")
        request.session.clear()  # a new session on sign-in (and a new CSRF token)
        if keep_next:
            request.session["next"] = keep_next
        request.session["token"] = token
        request.session["user"] = {"sub": sub, "roles": roles, "name": name or sub}
        log.info("signed in", user=sub, roles=roles, via=via)

    @app.post("/signin/dev")
    async def signin_dev(request: Request) -> Response:
        if not settings.dev_sign_in:
            return page(request, "not_found.html", status_code=404)
        form = await check_csrf(request)
        user_id, name, role = form.get("user_id", "").strip(), form.get("name", "").strip(), form.get("role", "")
        errors = {}
        if not USER_ID.match(user_id):
            errors["user_id"] = "1–64: A–Z a–z 0–9 . _ @ -"
        if len(name) > 100:
            errors["name"] = "≤ 100"
        if role not in ("member", "advisor", "member+advisor"):
            errors["role"] = "member | advisor | member+advisor"
        if errors:
            return page(request, "signin.html", status_code=422, oidc=oauth is not None, dev=True, errors=errors,
                        form=form)
        roles = role.split("+")
        _signed_in(request, mint(user_id, roles, name or None), sub=user_id, roles=roles,
                   name=name or None, via="development")
        return RedirectResponse(_safe_next(request.session.pop("next", None)), status_code=303)

    @app.post("/signout")
    async def signout(request: Request) -> Response:
        await check_csrf(request)
        id_token = request.cookies.get(ID_TOKEN_COOKIE)
        request.session.clear()
        target = "/signin"
        if oauth is not None and id_token:
            metadata = await oauth.kontor.load_server_metadata()
            end = metadata.get("end_session_endpoint")
            if end:
                back = settings.public_base_url.rstrip("/") + "/signin"
                target = end + "?" + urlencode({"id_token_hint": id_token, "client_id": settings.oidc_client_id,
                                                "post_logout_redirect_uri": back})
        response = RedirectResponse(target, status_code=303)
        response.delete_cookie(ID_TOKEN_COOKIE, path="/signout")
        return response

    @app.post("/language")
    async def language(request: Request) -> Response:
        form = await check_csrf(request)
        response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
        if form.get("lang") in i18n.LANGUAGES:
            response.set_cookie(i18n.COOKIE, form["lang"], max_age=365 * 86400, httponly=True, samesite="lax",
                                secure=settings.secure_cookies)
        return response

    for pages in PAGES:
        pages.register(app, web)

    return app


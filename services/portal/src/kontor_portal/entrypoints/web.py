"""What every page of the portal shares: the templates, the four APIs, the signed-in user (token,
roles, the role being worked in), CSRF and the one place where a page's role is checked.

Page modules (`member_pages`, ...) each have `register(app, web)`, which adds their routes; the
services still decide what a user may see or do, the portal's role check only chooses pages.
"""
from __future__ import annotations

import hmac
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from kontor.html import design_css
from kontor_portal import i18n
from kontor_portal.adapters.apis import ApiNotFound, Apis
from kontor_portal.settings import PortalSettings

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"
ROLES = ("member", "advisor")


class SignInRequired(Exception):
    pass


class CsrfFailed(Exception):
    pass


class WrongRole(Exception):
    """A page of a role the signed-in user does not have (answered with the not-found page)."""


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"], default=True))
    env.filters["money"] = lambda v, currency, lang: i18n.money(v, currency, lang)
    env.filters["num"] = lambda v, lang: i18n.number(v, lang)
    env.filters["day"] = lambda v, lang: i18n.date(v, lang)
    env.globals["design_css"] = design_css  # the look shared with the client's confirmation page
    return env


def as_uuid(value: str) -> uuid.UUID:
    """An id typed into the address bar that is no UUID: the same not-found page as an unknown one."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiNotFound(value) from None


class UserToken(str):
    """The signed-in user's bearer token and the role they work in now (None: the token's own)."""

    role: str | None

    def __new__(cls, token: str, role: str | None) -> UserToken:
        made = super().__new__(cls, token)
        made.role = role
        return made


@dataclass
class Web:
    settings: PortalSettings
    env: Environment
    apis: Apis

    # --- the user -----------------------------------------------------------------------------------
    @classmethod
    def token_of(cls, request: Request) -> UserToken:
        """The user's token, with the role they work in (the APIs get it as `Kontor-Role`, so a user with
        both roles is only a member to the services while working as one)."""
        token = request.session.get("token")
        if not token:
            raise SignInRequired
        return UserToken(str(token), cls.active_role(request))

    @staticmethod
    def roles_of(request: Request) -> list[str]:
        user = request.session.get("user") or {}
        return [r for r in user.get("roles") or [] if r in ROLES]

    @classmethod
    def active_role(cls, request: Request) -> str | None:
        """The role the user works in now: the one chosen with the role switch, else member if they are one."""
        roles = cls.roles_of(request)
        chosen = request.session.get("role")
        if chosen in roles:
            return str(chosen)
        return "member" if "member" in roles else (roles[0] if roles else None)

    @classmethod
    def require(cls, request: Request, role: str) -> UserToken:
        """The token of a signed-in user working in `role`; the one check of a page's role."""
        token = cls.token_of(request)
        if cls.active_role(request) != role:
            raise WrongRole(role)
        return token

    # --- forms ----------------------------------------------------------------------------------------
    @staticmethod
    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = request.session["csrf"] = secrets.token_urlsafe(32)
        return str(token)

    @staticmethod
    async def check_csrf(request: Request) -> dict[str, str]:
        """The posted form's text fields, once its CSRF token is the session's."""
        form = await request.form()
        sent = form.get("csrf")
        expected = request.session.get("csrf")
        if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, str(expected)):
            raise CsrfFailed
        return {k: v for k, v in form.items() if isinstance(v, str)}

    # --- pages ----------------------------------------------------------------------------------------
    @staticmethod
    def lang_of(request: Request) -> str:
        return i18n.choose(request.cookies.get(i18n.COOKIE), request.headers.get("accept-language"))

    def page(self, request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        lang = self.lang_of(request)
        html = self.env.get_template(template).render(
            lang=lang, t=lambda key: i18n.text(lang, key), user=request.session.get("user"),
            roles=self.roles_of(request), role=self.active_role(request),
            csrf=self.csrf_token(request), path=request.url.path
            + (f"?{request.url.query}" if request.url.query else ""), **context)
        return HTMLResponse(html, status_code=status_code)

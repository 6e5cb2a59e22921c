"""The user's settings: the language (the cookie the header's switch sets too), the roles of the
account with the role switch for a user with both, and where Keycloak's account console manages
password and e-mail (when the portal signs in with OpenID Connect)."""
from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.responses import RedirectResponse

from kontor_portal import i18n
from kontor_portal.entrypoints.web import Web

i18n.add_texts(
    de={"settings": "Einstellungen", "set_roles": "Ihre Rollen", "set_active_role": "Aktive Rolle",
        "switch_role": "Rolle wechseln", "set_account": "Passwort und E-Mail",
        "set_account_link": "Im Kontor-Konto ändern", "set_account_none": "Passwort und E-Mail verwaltet die "
        "Anmeldung; in der Entwicklungs-Anmeldung gibt es keine."},
    en={"settings": "Settings", "set_roles": "Your roles", "set_active_role": "Active role",
        "switch_role": "Switch role", "set_account": "Password and e-mail",
        "set_account_link": "Change them in your Kontor account", "set_account_none": "Password and e-mail are "
        "managed by the sign-in; the development sign-in has none."})


def register(app: FastAPI, web: Web) -> None:

    @app.get("/settings")
    async def settings_page(request: Request) -> Response:
        web.token_of(request)
        issuer = web.settings.oidc_issuer
        account = issuer.rstrip("/") + "/account" if issuer else None  # Keycloak's account console
        return web.page(request, "settings.html", account_url=account)

    @app.post("/role")
    async def switch_role(request: Request) -> Response:
        """The role switch: the chosen role (one of the user's) is the session's; to its dashboard."""
        web.token_of(request)
        form = await web.check_csrf(request)
        if form.get("role") in web.roles_of(request):
            request.session["role"] = form["role"]
        return RedirectResponse("/dashboard", status_code=303)

"""Settings of the portal (env prefix KONTOR_PORTAL_).

The portal owns no business data: it needs the four APIs' base URLs, the identity provider
(OpenID Connect issuer and client) and the secret that signs its session cookie.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kontor.settings import DEV_JWT_SECRET, MIN_SECRET_LENGTH, InsecureConfiguration

# public by design, like DEV_JWT_SECRET: refused outside KONTOR_ENV=development
DEV_SESSION_SECRET = "kontor-portal-dev-session-secret-0123456789"  # noqa: S105


class PortalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KONTOR_PORTAL_", extra="ignore", frozen=True,
                                      populate_by_name=True)

    environment: Literal["development", "production"] = Field(
        default="production", validation_alias="KONTOR_ENV",
        description="KONTOR_ENV: `development` allows the development sign-in and session secret")
    service_name: str = "portal"
    http_host: str = "127.0.0.1"
    http_port: int = 8100
    public_base_url: str = Field(default="http://127.0.0.1:8100",
                                 description="where browsers reach the portal (the OIDC redirect URI is built on it)")

    clients_url: str = "http://127.0.0.1:8102"
    orders_url: str = "http://127.0.0.1:8101"
    invoicing_url: str = "http://127.0.0.1:8103"
    notifications_url: str = "http://127.0.0.1:8104"
    api_timeout_s: float = Field(default=10.0, gt=0)

    session_secret: SecretStr = Field(default=SecretStr(DEV_SESSION_SECRET),
                                      description="signs the session cookie (at least 32 characters)")
    session_max_age_s: int = Field(default=8 * 3600, ge=60)

    oidc_issuer: str | None = Field(default=None, description="e.g. http://127.0.0.1:8180/realms/kontor; unset: "
                                    "no OpenID Connect sign-in (development falls back to the dev sign-in)")
    oidc_discovery_url: str | None = Field(default=None, description="where the portal itself fetches the provider's "
                                           "discovery document when the browser's address of the issuer is not "
                                           "reachable from the portal (containers: http://keycloak:8080/realms/kontor/"
                                           ".well-known/openid-configuration); unset: the issuer's")
    oidc_client_id: str = "kontor-portal"
    oidc_client_secret: SecretStr | None = Field(default=None, description="unset for a public client (PKCE only)")
    oidc_scope: str = "openid profile email"

    dev_jwt_secret: SecretStr = Field(default=SecretStr(DEV_JWT_SECRET),
                                      description="signs the development sign-in's HS256 tokens (development only)")

    log_level: str = "INFO"
    static_dir: Path = Field(default=Path(__file__).resolve().parents[4] / ".local" / "static", description=(
        "where htmx.min.js is (fetched by deploy/bootstrap.sh from the npm registry), served as /static/"))
    log_format: str = Field(default="json", pattern="^(json|console)$")

    @property
    def dev_sign_in(self) -> bool:
        """The development sign-in (any user id and role, an HS256 token): only in development."""
        return self.environment == "development"

    @property
    def secure_cookies(self) -> bool:
        return self.public_base_url.startswith("https://")

    @model_validator(mode="after")
    def _safe(self) -> Self:
        if self.environment != "development":
            if self.session_secret.get_secret_value() == DEV_SESSION_SECRET:
                raise InsecureConfiguration("KONTOR_PORTAL_SESSION_SECRET must be set outside development")
            if not self.oidc_issuer:
                raise InsecureConfiguration("KONTOR_PORTAL_OIDC_ISSUER must be set outside development "
                                            "(there is no other sign-in)")
        if len(self.session_secret.get_secret_value()) < MIN_SECRET_LENGTH:
            raise InsecureConfiguration(f"KONTOR_PORTAL_SESSION_SECRET needs at least {MIN_SECRET_LENGTH} characters")
        return self

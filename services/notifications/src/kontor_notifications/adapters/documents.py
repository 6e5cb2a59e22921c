"""Fetching an e-mail's attachments from the service that owns them (orders, invoicing).

Events carry documents by reference (URL and SHA-256), not their bytes. The bytes are
fetched when the e-mail is sent, with a service token, and must match the SHA-256 the
event announced: the e-mail carries exactly the stored document or is not sent.

The service token: with `oidc_token_url` (Keycloak, services verifying through its JWKS) one the
identity provider issues to the client `oidc_client_id` by the OAuth 2.0 client-credentials grant
(Authlib), kept until shortly before it expires and replaced at once when a download answers 401;
otherwise the static `service_token`, or (development, the API tests) one minted with the HS256 secret.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib

import httpx
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client

from kontor.auth import mint_token
from kontor.logging import get_logger
from kontor.service import CLIENT_LIMITS
from kontor_notifications.adapters.smtp import SendFailed
from kontor_notifications.domain.model import DocumentRef
from kontor_notifications.settings import NotificationsSettings

log = get_logger(__name__)


def service_token(settings: NotificationsSettings) -> str:
    if settings.service_token is not None:
        return settings.service_token.get_secret_value()
    # No role: only the scope to read stored documents (the downloads of orders and invoicing accept
    # it; every other route refuses it), for five minutes.
    return mint_token(settings.jwt_secret.get_secret_value(), "kontor-notifications", [], scopes=["documents:read"],
                      ttl=dt.timedelta(minutes=5), audience=settings.jwt_audience, issuer=settings.jwt_issuer)


class DocumentFetcher:
    def __init__(self, settings: NotificationsSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.client = client or httpx.AsyncClient(timeout=settings.document_timeout_s, limits=CLIENT_LIMITS)
        self.oauth: AsyncOAuth2Client | None = None
        if settings.oidc_token_url and settings.oidc_client_secret is not None:
            self.oauth = AsyncOAuth2Client(
                client_id=settings.oidc_client_id, client_secret=settings.oidc_client_secret.get_secret_value(),
                token_endpoint=settings.oidc_token_url, grant_type="client_credentials",
                leeway=int(settings.oidc_token_leeway_s), timeout=settings.document_timeout_s, limits=CLIENT_LIMITS)
        self._token_lock = asyncio.Lock()

    async def _new_token(self, oauth: AsyncOAuth2Client, stale: str | None = None) -> None:
        """A token by client credentials, unless another download fetched one already meanwhile."""
        async with self._token_lock:
            if oauth.token and oauth.token.get("access_token") != stale:
                return
            try:
                token = await oauth.fetch_token()
            except (OAuthError, ValueError) as e:  # refused, or an answer that is no token (not JSON)
                raise SendFailed(f"no service token from {self.settings.oidc_token_url} for client "
                                 f"{self.settings.oidc_client_id}: {e}", permanent=False) from e
            log.info("service token obtained", client_id=self.settings.oidc_client_id,
                     expires_in=token.get("expires_in"), scope=token.get("scope"))

    async def _get(self, url: str) -> httpx.Response:
        if self.oauth is None:
            return await self.client.get(url, headers={"Authorization": f"Bearer {service_token(self.settings)}"})
        if not self.oauth.token:
            await self._new_token(self.oauth)
        # Authlib replaces a token that expires within the leeway before it sends the request
        response = await self.oauth.get(url)
        if response.status_code == 401:  # revoked, or the provider's keys rotated: once more with a new token
            log.warning("service token refused, fetching a new one", url=url, status=response.status_code)
            await self._new_token(self.oauth, stale=self.oauth.token.get("access_token"))
            response = await self.oauth.get(url)
        return response

    async def fetch(self, ref: DocumentRef) -> bytes:
        if not ref.url:
            raise SendFailed(f"{ref.filename}: the event gave no URL to fetch it from", permanent=True)
        try:
            response = await self._get(ref.url)
        except (httpx.HTTPError, OAuthError) as e:
            raise SendFailed(f"{ref.filename}: {ref.url} unreachable: {type(e).__name__}: {e}", permanent=False) from e
        if response.status_code in (404, 410):
            raise SendFailed(f"{ref.filename}: {ref.url} answered {response.status_code}", permanent=True)
        if response.status_code != 200:
            raise SendFailed(f"{ref.filename}: {ref.url} answered {response.status_code}", permanent=False)
        digest = hashlib.sha256(response.content).hexdigest()
        if digest != ref.sha256:
            raise SendFailed(f"{ref.filename}: SHA-256 {digest} differs from the announced {ref.sha256}",
                             permanent=True)
        return response.content

    async def close(self) -> None:
        await self.client.aclose()
        if self.oauth is not None:
            await self.oauth.aclose()

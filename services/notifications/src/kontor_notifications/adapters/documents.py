"""Fetching an e-mail's attachments from the service that owns them (orders, invoicing).

Events carry documents by reference (URL and SHA-256), not their bytes. The bytes are
fetched when the e-mail is sent, with a service token, and must match the SHA-256 the
event announced: the e-mail carries exactly the stored document or is not sent.
"""
from __future__ import annotations

import datetime as dt
import hashlib

import httpx

from kontor.auth import mint_token
from kontor_notifications.adapters.smtp import SendFailed
from kontor_notifications.domain.model import DocumentRef
from kontor_notifications.settings import NotificationsSettings


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
        self.client = client or httpx.AsyncClient(timeout=settings.document_timeout_s)

    async def fetch(self, ref: DocumentRef) -> bytes:
        if not ref.url:
            raise SendFailed(f"{ref.filename}: the event gave no URL to fetch it from", permanent=True)
        try:
            response = await self.client.get(ref.url,
                                             headers={"Authorization": f"Bearer {service_token(self.settings)}"})
        except httpx.HTTPError as e:
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

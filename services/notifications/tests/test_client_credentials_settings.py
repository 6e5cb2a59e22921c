"""The settings of the client-credentials grant (the token notifications fetches documents with):
complete or refused at start-up, never half set; without them the HS256 minting stays."""
import jwt
import pytest
from pydantic import ValidationError

from kontor_notifications.adapters.documents import DocumentFetcher, service_token
from kontor_notifications.settings import NotificationsSettings

pytestmark = pytest.mark.unit
TOKEN_URL = "http://127.0.0.1:8180/realms/kontor/protocol/openid-connect/token"


def test_a_token_url_without_the_client_secret_is_refused():
    with pytest.raises(ValidationError, match="oidc_client_secret"):
        NotificationsSettings(oidc_token_url=TOKEN_URL)


def test_client_credentials_and_a_static_token_are_not_both_set():
    with pytest.raises(ValidationError, match="either oidc_token_url"):
        NotificationsSettings(oidc_token_url=TOKEN_URL, oidc_client_secret="s", service_token="static")


async def test_with_client_credentials_the_fetcher_asks_the_identity_provider():
    fetcher = DocumentFetcher(NotificationsSettings(oidc_token_url=TOKEN_URL, oidc_client_secret="s3cret"))
    try:
        assert fetcher.oauth is not None
        assert fetcher.oauth.client_id == "kontor-notifications"
        assert fetcher.oauth.metadata["grant_type"] == "client_credentials"
        assert fetcher.oauth.metadata["token_endpoint"] == TOKEN_URL
        # the documents are fetched through it: its pool, like the plain client's, drops idle connections
        # before the services' APIs close them (kontor.service.CLIENT_LIMITS)
        pools = [fetcher.oauth._transport._pool, fetcher.client._transport._pool]
        assert [pool._keepalive_expiry for pool in pools] == [2.0, 2.0]
    finally:
        await fetcher.close()


async def test_without_them_the_development_token_is_minted():
    settings = NotificationsSettings()
    fetcher = DocumentFetcher(settings)
    try:
        assert fetcher.oauth is None
    finally:
        await fetcher.close()
    claims = jwt.decode(service_token(settings), settings.jwt_secret.get_secret_value(), algorithms=["HS256"],
                        options={"verify_aud": False})
    assert (claims["roles"], claims["scope"]) == ([], "documents:read")

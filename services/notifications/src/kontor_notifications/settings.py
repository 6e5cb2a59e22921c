"""Settings of the notifications service (env prefix KONTOR_NOTIFICATIONS_)."""
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from kontor.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KONTOR_NOTIFICATIONS_", extra="ignore", frozen=True)

    service_name: str = "notifications"
    database_url: str = "postgresql+asyncpg://kontor@127.0.0.1:15432/kontor_notifications"
    http_port: int = 8104

    smtp_host: str = Field(default="127.0.0.1", description="the local SMTP server of `make up` by default")
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: bool = Field(default=False, description="TLS from the first byte (port 465)")
    smtp_starttls: bool = Field(default=False, description="upgrade with STARTTLS (port 587)")
    smtp_timeout_s: float = Field(default=30, description="for connecting and for each SMTP command")
    smtp_pool_idle_s: float = Field(default=30, description="an SMTP connection idle this long is closed")
    smtp_check_idle_after_s: float = Field(default=5, description="an SMTP connection idle this long is checked "
                                                                  "with NOOP before it carries the next e-mail")
    smtp_max_messages_per_connection: int = Field(default=100, ge=1, description="then the connection is closed "
                                                                                 "and a new one opened")
    mail_from: str = "Kontor eG <noreply@kontor.example>"
    reply_to: str | None = "mitgliederservice@kontor.example"
    message_id_domain: str = "kontor.example"

    delivery_enabled: bool = True
    delivery_interval_s: float = Field(default=1.0, description="how often the worker looks for due e-mails "
                                       "while the queue is empty (a backlog is worked through without pause)")
    delivery_concurrency: int = Field(default=8, ge=1, le=64, description="e-mails sent at the same time, each "
                                      "over its own SMTP connection and in its own database transaction")
    delivery_timeout_s: float = Field(default=120, gt=0, description="at most this long for one e-mail (fetching "
                                      "its documents and sending it); then the attempt failed, transiently")
    delivery_batch_size: int = Field(default=50, ge=1, description="at most this many e-mails per call of "
                                     "`deliver_due` (the worker's loop keeps going until the queue is empty)")
    retry_base_s: float = Field(default=5.0, description="first retry after a transient failure; doubles each time")
    retry_max_delay_s: float = 900
    max_attempts: int = Field(default=30, ge=1, description="then the e-mail is failed for good (about 6 h of "
                                                            "retries with the defaults)")

    service_token: SecretStr | None = Field(
        default=None, description="bearer token to fetch documents from orders and invoicing (with RS256: one "
                                  "the identity provider issued with the scope documents:read); when unset, one with "
                                  "only that scope is minted with the HS256 secret")
    oidc_token_url: str | None = Field(
        default=None, description="the identity provider's token endpoint (Keycloak: <realm URL>/protocol/"
                                  "openid-connect/token): with it, the token to fetch documents is obtained by the "
                                  "OAuth 2.0 client-credentials grant (and kept until shortly before it expires)")
    oidc_client_id: str = Field(default="kontor-notifications", description="the confidential client of the "
                                "client-credentials grant (its token: no role, the scope documents:read)")
    oidc_client_secret: SecretStr | None = Field(default=None, description="that client's secret")
    oidc_token_leeway_s: float = Field(default=30, ge=0, description="a token expiring within this many seconds "
                                       "is replaced before it is used")
    document_timeout_s: float = 30

    @model_validator(mode="after")
    def _client_credentials_complete(self) -> "NotificationsSettings":
        if self.oidc_token_url and self.oidc_client_secret is None:
            raise ValueError("oidc_token_url is set but oidc_client_secret is not: the client-credentials grant "
                             "needs the secret of the client oidc_client_id")
        if self.oidc_token_url and self.service_token is not None:
            raise ValueError("set either oidc_token_url (client credentials) or service_token, not both")
        return self

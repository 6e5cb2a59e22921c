"""Settings helpers: one pydantic-settings class per service, one env prefix each.

`ServiceSettings` holds what every service needs (database, Kafka, HTTP, auth,
logging, consumer retries); a service subclasses it and sets its own prefix,
e.g. `KONTOR_CLIENTS_`.
"""
from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "kontor-dev-secret-change-me-in-production-0123456789"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str = "kontor"
    database_url: str = "postgresql+asyncpg://kontor@127.0.0.1:15432/kontor"
    kafka_bootstrap: str = "127.0.0.1:19092"
    topic_prefix: str = Field(
        default="",
        description="Prepended to every topic name; tests use it to keep runs apart.",
    )
    topic_partitions: int = 3
    topic_replication: int = 1
    http_host: str = "127.0.0.1"
    http_port: int = 8100

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_algorithm: str = Field(default="HS256", pattern="^(HS256|RS256)$")
    jwks_url: str | None = Field(default=None, description="RS256 keys; used when set")
    jwt_audience: str | None = None
    jwt_issuer: str | None = None

    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|console)$")

    relay_batch_size: int = 200
    relay_poll_interval_s: float = 0.1
    consumer_max_attempts: int = Field(default=3, ge=1)
    consumer_retry_backoff_s: float = 0.2
    run_migrations_on_start: bool = True

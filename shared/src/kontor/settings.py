"""Settings helpers: one pydantic-settings class per service, one env prefix each.

`ServiceSettings` holds what every service needs (database, Kafka, HTTP, auth,
logging, consumer retries); a service subclasses it and sets its own prefix,
e.g. `KONTOR_CLIENTS_`.
"""
from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# public by design: no service starts with it outside KONTOR_ENV=development
DEV_JWT_SECRET = "kontor-dev-secret-change-me-in-production-0123456789"  # noqa: S105
MIN_SECRET_LENGTH = 32  # HS256 wants at least 256 bits of key


class InsecureConfiguration(ValueError):
    """The settings would run a service outside development with a secret anybody knows."""


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    # Shared by every service, so one name each, without the service's prefix.
    environment: Literal["development", "production"] = Field(
        default="production", validation_alias="KONTOR_ENV",
        description="KONTOR_ENV: `development` allows the development JWT secret (make up and the tests set it)")

    service_name: str = "kontor"
    database_url: str = "postgresql+asyncpg://kontor@127.0.0.1:15432/kontor"
    kafka_bootstrap: str = Field(default="127.0.0.1:19092", description="one broker or a comma-separated list "
                                 "(h1:9092,h2:9092,h3:9092): any of them finds the cluster")
    topic_prefix: str = Field(
        default="",
        description="Prepended to every topic name; tests use it to keep runs apart.",
    )
    topic_partitions: int = 3
    topic_replication: int = Field(default=1, ge=1, description="replication factor of the topics the worker "
                                   "creates (3 on a 3-broker cluster)")
    topic_min_insync_replicas: int | None = Field(default=None, ge=1, description="min.insync.replicas of those "
                                                  "topics (2 on a 3-broker cluster); unset: the broker's default")
    http_host: str = "127.0.0.1"
    http_port: int = 8100
    worker_http_port: int | None = Field(default=None, ge=1, le=65535, description="the worker serves /healthz "
                                         "and /readyz on this port (unset: none)")

    jwt_secret: SecretStr = Field(
        default=SecretStr(DEV_JWT_SECRET), validation_alias="KONTOR_JWT_SECRET",
        description="KONTOR_JWT_SECRET: the HS256 secret every service shares (not needed with jwks_url)")
    jwt_algorithm: str = Field(default="HS256", pattern="^(HS256|RS256)$")
    jwks_url: str | None = Field(default=None, description="RS256 keys; used when set")
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_accept_dev_tokens: bool = Field(
        default=False, description="with jwks_url: also accept the HS256 development tokens (kontor-token, make demo) "
                                   "beside the identity provider's RS256 ones; development only (`make up` sets it)")

    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|console)$")

    relay_batch_size: int = 200
    relay_poll_interval_s: float = 0.1
    consumer_max_attempts: int = Field(default=3, ge=1)
    consumer_retry_backoff_s: float = 0.2
    consumer_fetch_min_bytes: int = Field(
        default=16384, ge=1, description="the broker answers a consumer's fetch once this much is there (or "
        "consumer_fetch_max_wait_ms passed): under load one fetch carries many records instead of one each, "
        "less broker and client CPU per record (bench/kafka_consumption.py); 1 answers at once")
    consumer_fetch_max_wait_ms: int = Field(
        default=100, ge=0, le=30000, description="the longest a fetch waits for consumer_fetch_min_bytes: what an "
        "event may wait at most when traffic is light")
    infrastructure_max_backoff_s: float = Field(default=30.0, gt=0, description="longest wait between retries "
                                                "while the database or the broker is down")
    run_migrations_on_start: bool = True
    allow_future_as_of: bool = Field(
        default=False, description="accept runs (billing, standing, order rules) as of a date later than today, and "
                                   "payments received after today, for demos and tests that play a year through "
                                   "(`make up` and the tests that need it set it); a real deployment leaves it off: a "
                                   "billing run as of a future date would take that year's invoice numbers and send "
                                   "reminders not yet due, an order run would expire offers early")

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        """A plain libpq URL (`postgresql://` or `postgres://`, as CloudNativePG's app secret holds it under `uri`)
        is taken with the asyncpg driver every service uses."""
        for scheme in ("postgresql://", "postgres://"):
            if url.startswith(scheme):
                return "postgresql+asyncpg://" + url.removeprefix(scheme)
        return url

    @model_validator(mode="after")
    def _refuse_known_secret(self) -> Self:
        if self.jwt_accept_dev_tokens and self.environment != "development":
            raise InsecureConfiguration("jwt_accept_dev_tokens accepts tokens anybody can mint: development only")
        if self.environment == "development" or self.jwks_url:
            return self
        secret = self.jwt_secret.get_secret_value()
        if secret == DEV_JWT_SECRET:
            raise InsecureConfiguration(
                "refusing to run with the development JWT secret outside development: set KONTOR_JWT_SECRET to a "
                "secret of your own (or use jwks_url), or KONTOR_ENV=development on a developer's machine")
        if len(secret) < MIN_SECRET_LENGTH:
            raise InsecureConfiguration(f"KONTOR_JWT_SECRET has {len(secret)} characters; at least "
                                        f"{MIN_SECRET_LENGTH} are needed outside development")
        return self

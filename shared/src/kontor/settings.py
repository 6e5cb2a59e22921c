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
    infrastructure_max_backoff_s: float = Field(default=30.0, gt=0, description="longest wait between retries "
                                                "while the database or the broker is down")
    run_migrations_on_start: bool = True

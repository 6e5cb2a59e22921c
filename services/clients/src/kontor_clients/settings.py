"""Settings of the clients service (env prefix KONTOR_CLIENTS_)."""
from pydantic_settings import SettingsConfigDict

from kontor.settings import ServiceSettings


class ClientsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KONTOR_CLIENTS_", extra="ignore", frozen=True)

    service_name: str = "clients"
    database_url: str = "postgresql+asyncpg://kontor@127.0.0.1:15432/kontor_clients"
    http_port: int = 8102

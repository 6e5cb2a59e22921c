"""Settings of the clients service (env prefix KONTOR_CLIENTS_)."""
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kontor.settings import ServiceSettings


class ClientsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KONTOR_CLIENTS_", extra="ignore", frozen=True)

    service_name: str = "clients"
    database_url: str = "postgresql+asyncpg://kontor@127.0.0.1:15432/kontor_clients"
    http_port: int = 8102

    # The daily standing run (debt rule for every client with open invoices).
    standing_run_enabled: bool = True
    standing_run_hour: int = Field(default=2, ge=0, le=23, description="Berlin hour after which the day's run starts")
    standing_run_check_interval_s: float = 300

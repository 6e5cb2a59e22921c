"""Settings of the invoicing service (env prefix KONTOR_INVOICING_)."""
from pydantic_settings import SettingsConfigDict

from kontor.settings import ServiceSettings


class InvoicingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KONTOR_INVOICING_", extra="ignore", frozen=True)

    service_name: str = "invoicing"
    database_url: str = "postgresql+asyncpg://kontor@127.0.0.1:15432/kontor_invoicing"
    http_port: int = 8103

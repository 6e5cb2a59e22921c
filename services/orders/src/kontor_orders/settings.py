"""Settings of the orders service (env prefix KONTOR_ORDERS_)."""
from pydantic_settings import SettingsConfigDict

from kontor.settings import ServiceSettings


class OrdersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KONTOR_ORDERS_", extra="ignore", frozen=True)

    service_name: str = "orders"
    database_url: str = "postgresql+asyncpg://kontor@127.0.0.1:15432/kontor_orders"
    http_port: int = 8101

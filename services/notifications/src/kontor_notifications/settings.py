"""Settings of the notifications service (env prefix KONTOR_NOTIFICATIONS_)."""
from pydantic_settings import SettingsConfigDict

from kontor.settings import ServiceSettings


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KONTOR_NOTIFICATIONS_", extra="ignore", frozen=True)

    service_name: str = "notifications"
    database_url: str = "postgresql+asyncpg://kontor@127.0.0.1:15432/kontor_notifications"
    http_port: int = 8104

"""Settings of the orders service (env prefix KONTOR_ORDERS_)."""
from decimal import Decimal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kontor.attachments import DEFAULT_MAX_BYTES
from kontor.cooperative import Cooperative
from kontor.settings import ServiceSettings

# EUR per one unit of the currency; used for the minimum-fee check and stored on each
# order at submission. Configure current rates in production (KONTOR_ORDERS_EUR_EXCHANGE_RATES
# as JSON, e.g. {"USD": "0.92"}).
DEFAULT_RATES = {"EUR": "1", "USD": "0.92", "CAD": "0.66", "PLN": "0.23", "GBP": "1.17", "CZK": "0.040",
                 "CHF": "1.05", "AUD": "0.60", "DKK": "0.134", "JPY": "0.0061", "SEK": "0.088"}


class OrdersSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KONTOR_ORDERS_", extra="ignore", frozen=True,
                                      env_nested_delimiter="__")

    service_name: str = "orders"
    database_url: str = "postgresql+asyncpg://kontor@127.0.0.1:15432/kontor_orders"
    http_port: int = 8101

    seller: Cooperative = Field(default_factory=Cooperative, description="the cooperative the confirmation page names "
                                "as the sender, with its imprint (the same model and defaults as the invoices' seller: "
                                "KONTOR_ORDERS_SELLER__NAME etc. as KONTOR_INVOICING_SELLER__NAME)")
    invoice_draft_lead_days: int = Field(default=7, ge=0, le=366, description=(
        "invoicing drafts a planned invoice this many days before its date (KONTOR_INVOICING_DRAFT_LEAD_DAYS, the "
        "same number): a price change cannot reach a period whose draft may exist"))
    public_base_url: str = Field(default="http://127.0.0.1:8101",
                                 description="where clients reach the confirmation page (links in e-mails)")
    eur_exchange_rates: dict[str, Decimal] = Field(
        default_factory=lambda: {k: Decimal(v) for k, v in DEFAULT_RATES.items()})
    minimum_wage_eur: Decimal = Decimal("13.90")
    employer_on_costs: Decimal = Decimal("0.21")
    cooperative_fee: Decimal = Decimal("0.10")
    offer_warning_days: int = 3
    renewal_reminder_days: int = Field(default=14, ge=0, le=366, description=(
        "the member is reminded this many days before the notice deadline of an automatically renewing order"))
    attachment_max_bytes: int = Field(default=DEFAULT_MAX_BYTES, description="largest document an order takes "
                                      "(invoice drafts take the same: KONTOR_INVOICING_ATTACHMENT_MAX_BYTES)")
    order_runs_enabled: bool = True
    order_run_interval_s: float = 3600

"""Settings of the invoicing service (env prefix KONTOR_INVOICING_)."""
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kontor.attachments import DEFAULT_MAX_BYTES
from kontor.cooperative import Cooperative
from kontor.settings import ServiceSettings

# the cooperative as the invoices name it: one model for every service (kontor.cooperative)
Seller = Cooperative


class InvoicingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="KONTOR_INVOICING_", extra="ignore", frozen=True,
                                      env_nested_delimiter="__")

    service_name: str = "invoicing"
    database_url: str = "postgresql+asyncpg://kontor@127.0.0.1:15432/kontor_invoicing"
    http_port: int = 8103

    seller: Seller = Field(default_factory=Seller)
    public_base_url: str = Field(default="http://127.0.0.1:8103", description="base of document links in events")
    attachment_max_bytes: int = Field(default=DEFAULT_MAX_BYTES, description="largest file a draft takes "
                                      "(as an order's documents: KONTOR_ORDERS_ATTACHMENT_MAX_BYTES)")
    draft_lead_days: int = Field(default=7, description="drafts are created this many days before the invoice date")
    reminder_days: tuple[int, ...] = Field(default=(7, 21, 35), description="days after the due date")
    xrechnung_rules_dir: Path | None = Field(
        default=None, description="KoSIT's XRechnung rules (e.g. ../shared/xrechnung); when set, an invoice whose "
                                  "X-Rechnung fails them is not sent but waits for adjustment")
    billing_runs_enabled: bool = Field(default=True, description="the worker starts a run as of today every "
                                                                 "billing_run_interval_s when something is due")
    billing_run_interval_s: float = 600
    billing_batch_size: int = Field(default=50, description="planned invoices, drafts or reminders per transaction")
    runs_poll_interval_s: float = Field(default=0.5, description="how often an idle worker looks for a billing run")

    render_processes: int = Field(default=1, ge=1, le=64, description="rendering processes per worker (PDF, "
                                  "X-Rechnung and its check run there, never on the worker's event loop)")
    issue_batch_size: int = Field(default=8, ge=1, le=500, description="invoices prepared and numbered together")
    issue_lease_s: float = Field(default=30, gt=0, description="a worker's claim on the invoices it prepares or "
                                 "renders; a dead worker's claim runs out after this")
    issuing_poll_interval_s: float = Field(default=0.2, gt=0)
    max_render_attempts: int = Field(default=3, ge=1, description="a run waits no longer for an invoice whose "
                                     "check or rendering failed this often (it is retried with backoff)")

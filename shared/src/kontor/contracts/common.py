"""Value types shared by several contracts."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Language = Literal["de", "en"]
ClientKind = Literal["company", "person", "public_body"]
Standing = Literal["ok", "advance_payment_only", "blocked"]


class Address(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    street: str
    postal_code: str
    city: str
    country: str  # ISO 3166-1 alpha-2
    # Added compatibly: the state, province or territory as the code part of ISO 3166-2 ("TX" for
    # US-TX); required for US, CA and AU addresses registered or changed since (kontor.subdivisions).
    subdivision: str | None = Field(default=None, description="ISO 3166-2 subdivision code without the "
                                    "country prefix, e.g. TX (US-TX), ON (CA-ON), NSW (AU-NSW)")


class Actor(BaseModel):
    """Who caused a change: a user (member or advisor), the client, or the system."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: Literal["member", "advisor", "client", "system"]
    id: str | None = None
    name: str | None = None

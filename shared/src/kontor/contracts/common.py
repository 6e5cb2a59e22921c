"""Value types shared by several contracts."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Language = Literal["de", "en"]
ClientKind = Literal["company", "person", "public_body"]
Standing = Literal["ok", "advance_payment_only", "blocked"]


class Address(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    street: str
    postal_code: str
    city: str
    country: str  # ISO 3166-1 alpha-2


class Actor(BaseModel):
    """Who caused a change: a user (member or advisor), the client, or the system."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: Literal["member", "advisor", "client", "system"]
    id: str | None = None
    name: str | None = None

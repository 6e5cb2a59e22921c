"""Events of the notifications service (topic kontor.notifications.v1, key = e-mail id).

Every e-mail the platform sends ends in exactly one of them: `email.sent` once the SMTP
server accepted it, or `email.failed` when it was refused for good or could not be sent
after all retries. Each names the event that caused it, so a subscriber can tell whether
"the client was told" about an order or invoice.
"""
from __future__ import annotations

import datetime as dt
from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from kontor import topics
from kontor.contracts import Contract


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class EmailAttachmentV1(_Value):
    filename: str
    media_type: str
    sha256: str


class EmailV1(_Value):
    email_id: UUID
    template: str  # e.g. invoice_issued
    language: str
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    subject: str
    caused_by_event_id: str
    caused_by_event_type: str
    order_id: UUID | None = None
    invoice_id: UUID | None = None
    client_id: UUID | None = None
    member_id: str | None = None
    attachments: tuple[EmailAttachmentV1, ...] = ()


class _EmailEvent(Contract):
    topic: ClassVar[str] = topics.NOTIFICATIONS
    aggregate_field: ClassVar[str] = "email_id"
    source: ClassVar[str] = "kontor/notifications"

    email_id: UUID
    email: EmailV1
    attempts: int
    occurred_at: dt.datetime


class EmailSentV1(_EmailEvent):
    event_type: ClassVar[str] = "kontor.email.sent.v1"

    message_id: str  # the Message-ID header: the same on every attempt of one e-mail


class EmailFailedV1(_EmailEvent):
    event_type: ClassVar[str] = "kontor.email.failed.v1"

    reason: str

"""HTTP API of the notifications service: members' addresses and the delivery log.

Advisors see every e-mail; a member sees the e-mails that concern their own orders and
invoices (those carry their member id), including the ones sent to their clients. Neither
sees the client's confirmation link: the stored bodies carry it redacted (only the e-mail
sent to the client has it). The preview is a page of its own with a strict
Content-Security-Policy; every value in it is escaped.
"""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Query, status
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict, Field

from kontor.api import Ctx, ServiceContext, create_service_api
from kontor.auth import CurrentPrincipal, Principal
from kontor.clock import Clock
from kontor.html import html_page
from kontor.inputs import EmailAddress
from kontor_notifications.adapters import repository
from kontor_notifications.adapters.orm import outbox
from kontor_notifications.domain import model
from kontor_notifications.service_layer import services
from kontor_notifications.settings import NotificationsSettings

members = APIRouter(prefix="/members", tags=["members"])
emails = APIRouter(prefix="/emails", tags=["delivery log"])



class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: EmailAddress
    name: str | None = Field(default=None, max_length=200)
    language: Literal["de", "en"] = "de"


class MemberOut(BaseModel):
    member_id: str
    email: str
    name: str | None
    language: str


class AttachmentOut(BaseModel):
    filename: str
    media_type: str
    sha256: str


class RefusedOut(BaseModel):
    address: str
    reason: str


class EmailSummary(BaseModel):
    email_id: uuid.UUID
    template: str
    language: str
    to: list[str]
    cc: list[str]
    subject: str
    status: Literal["pending", "sent", "failed"]
    attempts: int
    last_error: str | None
    next_attempt_at: dt.datetime | None
    created_at: dt.datetime
    sent_at: dt.datetime | None
    event_type: str
    event_id: str
    order_id: uuid.UUID | None
    invoice_id: uuid.UUID | None
    client_id: uuid.UUID | None
    member_id: str | None
    message_id: str
    attachments: list[AttachmentOut]
    refused: list[RefusedOut] = Field(description="recipients it did not reach (not an address, or refused by "
                                                  "the SMTP server while it took the others), with why")


class EmailDetail(EmailSummary):
    text_body: str
    html_body: str


def _summary(row, cls=EmailSummary):
    extra = {"text_body": row.text_body, "html_body": row.html_body} if cls is EmailDetail else {}
    return cls(email_id=row.id, template=row.template, language=row.language, to=row.to, cc=row.cc,
               subject=row.subject, status=row.status, attempts=row.attempts, last_error=row.last_error,
               next_attempt_at=row.next_attempt_at, created_at=row.created_at, sent_at=row.sent_at,
               event_type=row.event_type, event_id=row.event_id, order_id=row.order_id, invoice_id=row.invoice_id,
               client_id=row.client_id, member_id=row.member_id, message_id=row.message_id,
               attachments=[AttachmentOut(**{k: a[k] for k in ("filename", "media_type", "sha256")})
                            for a in row.attachments],
               refused=[RefusedOut(address=r["address"], reason=r["reason"]) for r in row.refused], **extra)


def _may_manage(principal: Principal, member_id: str) -> None:
    if not (principal.is_advisor or principal.sub == member_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only the member themself or an advisor")


@members.put("/{member_id}", response_model=MemberOut, summary="Set a member's e-mail address and language")
async def put_member(member_id: str, body: MemberIn, ctx: Ctx, principal: CurrentPrincipal) -> MemberOut:
    _may_manage(principal, member_id)
    async with ctx.begin() as session:
        await services.put_member(session, model.Member(member_id, body.email, body.name, body.language))
    return MemberOut(member_id=member_id, **body.model_dump())


@members.get("/{member_id}", response_model=MemberOut, summary="A member's e-mail address and language")
async def get_member(member_id: str, ctx: Ctx, principal: CurrentPrincipal) -> MemberOut:
    _may_manage(principal, member_id)
    async with ctx.read() as session:
        found = await repository.member(session, member_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no address on file for member {member_id!r}")
    return MemberOut(member_id=member_id, email=found.email, name=found.name, language=found.language)


async def _visible_email(ctx: ServiceContext, principal: Principal, email_id: uuid.UUID):
    async with ctx.read() as session:
        row = await repository.get_email(session, email_id)
    if not principal.is_advisor and row.member_id != principal.sub:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no e-mail {email_id}")
    return row


@emails.get("", response_model=list[EmailSummary], summary="The delivery log: advisors all, members their own")
async def list_emails(ctx: Ctx, principal: CurrentPrincipal,
                      recipient: Annotated[str | None, Query(max_length=254, description="in To or Cc")] = None,
                      order_id: uuid.UUID | None = None, invoice_id: uuid.UUID | None = None,
                      status_: Annotated[Literal["pending", "sent", "failed"] | None, Query(alias="status")] = None,
                      limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[EmailSummary]:
    async with ctx.read() as session:
        rows = await repository.list_emails(session, member_id=None if principal.is_advisor else principal.sub,
                                            recipient=recipient, order_id=order_id, invoice_id=invoice_id,
                                            status=status_, limit=limit)
    return [_summary(r) for r in rows]


@emails.get("/{email_id}", response_model=EmailDetail, summary="One e-mail with its rendered bodies")
async def get_email(email_id: uuid.UUID, ctx: Ctx, principal: CurrentPrincipal) -> EmailDetail:
    return _summary(await _visible_email(ctx, principal, email_id), EmailDetail)


def _preview_header(row) -> Markup:
    """Who it went to and how it stands, above the e-mail; every value escaped (Markup.format)."""
    lines = [Markup("<b>{}</b>").format(row.subject), Markup("To: {}").format(", ".join(row.to))]
    if row.cc:
        lines.append(Markup("Cc: {}").format(", ".join(row.cc)))
    lines.append(Markup("Status: {} ({} attempt(s))").format(row.status, row.attempts))
    if row.attachments:
        lines.append(Markup("Attachments: {}").format(", ".join(a["filename"] for a in row.attachments)))
    if row.refused:
        lines.append(Markup("Not reached: {}").format("; ".join(f"{r['address']} ({r['reason']})"
                                                                for r in row.refused)))
    return Markup('<div style="font:13px sans-serif;background:#eef;padding:8px 12px;border-bottom:1px solid #ccd">'
                  '{}</div>').format(Markup("<br>").join(lines))


@emails.get("/{email_id}/preview", response_class=HTMLResponse, summary="The e-mail as a page, as it was sent")
async def preview_email(email_id: uuid.UUID, ctx: Ctx, principal: CurrentPrincipal) -> HTMLResponse:
    row = await _visible_email(ctx, principal, email_id)
    header = _preview_header(row)
    # the stored body is a whole document; the header goes right after <body>. It carries the
    # confirmation link redacted, as stored: the preview shows no more than the delivery log
    return html_page(row.html_body.replace("<body>", f"<body>{header}", 1))


def create_api_app(settings: NotificationsSettings, *, clock: Clock | None = None) -> FastAPI:
    return create_service_api(
        title="Kontor notifications",
        description="E-mails of the order-to-invoice journey: templates, SMTP delivery and the delivery log.",
        settings=settings,
        outbox_table=outbox,
        routers=[members, emails],
        clock=clock,
    )


def app_from_env() -> FastAPI:
    """uvicorn factory: settings from the environment (KONTOR_NOTIFICATIONS_*)."""
    return create_api_app(NotificationsSettings())

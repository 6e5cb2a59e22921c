"""Use cases of the notifications service: planning e-mails from events, delivering them,
and the members' addresses.

Planning happens in the transaction that consumes the event (inbox row, read models and
e-mail rows commit together). An e-mail is rendered when it is planned and stored as
rendered, so the delivery log shows exactly what was sent. Delivering one e-mail claims it
locked (`FOR UPDATE SKIP LOCKED`), sends it and records the outcome with its
`email.sent`/`email.failed` event in the same transaction; `delivery.DeliveryLoop` runs
several of those at a time.
"""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

from markupsafe import escape
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kontor import metrics
from kontor.clock import Clock
from kontor.contracts.notifications import EmailAttachmentV1, EmailFailedV1, EmailSentV1, EmailV1
from kontor.envelope import Envelope
from kontor.faults import is_infrastructure_fault
from kontor.logging import get_logger
from kontor.outbox import Outbox
from kontor_notifications.adapters import repository
from kontor_notifications.adapters.documents import DocumentFetcher
from kontor_notifications.adapters.smtp import Mailer, SendFailed, build_message
from kontor_notifications.adapters.templates import render
from kontor_notifications.domain import model
from kontor_notifications.settings import NotificationsSettings

log = get_logger(__name__)


@dataclass
class Deps:
    settings: NotificationsSettings
    clock: Clock
    outbox: Outbox
    mailer: Mailer | None = None
    documents: DocumentFetcher | None = None


def contract(row) -> EmailV1:
    return EmailV1(
        email_id=row.id, template=row.template, language=row.language, to=tuple(row.to), cc=tuple(row.cc),
        subject=row.subject, caused_by_event_id=row.event_id, caused_by_event_type=row.event_type,
        order_id=row.order_id, invoice_id=row.invoice_id, client_id=row.client_id, member_id=row.member_id,
        attachments=tuple(EmailAttachmentV1(filename=a["filename"], media_type=a["media_type"], sha256=a["sha256"])
                          for a in row.attachments))


async def _store(session: AsyncSession, deps: Deps, envelope: Envelope, planned: list[model.Planned],
                 member_names: dict[str, str]) -> int:
    """Render and queue the planned e-mails; those already queued for this event are skipped."""
    now = deps.clock.now()
    stored = 0
    for p in map(model.without_invalid_addresses, planned):
        email_id = uuid.uuid4()
        reason = model.printable(p.problem) if p.problem else None
        rendered = render(p.template, p.language, {
            **p.context, "attachments": [a.filename for a in p.attachments],
            "member_name": member_names.get(p.member_id or "", p.member_id)})
        values = dict(
            id=email_id, event_id=str(envelope.id), event_type=envelope.type, template=p.template,
            recipients_key=p.recipients_key, language=p.language, to=[a.lower() for a in p.to],
            cc=[a.lower() for a in p.cc], subject=rendered.subject, text_body=rendered.text, html_body=rendered.html,
            attachments=[{"filename": a.filename, "media_type": a.media_type, "sha256": a.sha256, "url": a.url}
                         for a in p.attachments],
            secret_link=p.secret_link, refused=_refused(p.refused),
            order_id=p.order_id, invoice_id=p.invoice_id, client_id=p.client_id, member_id=p.member_id,
            status=model.FAILED if p.problem else model.PENDING, attempts=0,
            next_attempt_at=None if p.problem else now, last_error=reason,
            message_id=f"<{email_id}@{deps.settings.message_id_domain}>", created_at=now)
        if not await repository.insert_email(session, values):
            log.info("e-mail already planned for this event", template=p.template, event_id=envelope.id)
            continue
        stored += 1
        if reason is not None:
            await deps.outbox.add(session, EmailFailedV1(email_id=email_id, email=contract(SimpleNamespace(**values)),
                                                         attempts=0,
                                                         occurred_at=now, reason=reason),
                                  time=now, caused_by=envelope)
            log.warning("e-mail cannot be sent", template=p.template, reason=reason, event_id=envelope.id)
        else:
            log.info("e-mail queued", template=p.template, language=p.language, to=p.to, cc=p.cc,
                     refused=values["refused"] or None, event_id=envelope.id, email_id=str(email_id))
    return stored


def _refused(refused) -> list[dict[str, str]]:
    return [{"address": model.printable(r.address, 254), "reason": model.printable(r.reason, 500)} for r in refused]


def _names(found: dict[str, model.Member | None]) -> dict[str, str]:
    return {k: (m.name or k) for k, m in found.items() if m}


async def on_order_event(session: AsyncSession, deps: Deps, event: dict, envelope: Envelope) -> int:
    order = event["order"]
    await repository.upsert_known_order(session, order)
    members = await repository.members_by_id(session, [order["member_id"]])
    planned = model.plan_order_event(envelope.type, event, members[order["member_id"]])
    return await _store(session, deps, envelope, planned, _names(members))


async def on_invoice_event(session: AsyncSession, deps: Deps, event: dict, envelope: Envelope) -> int:
    invoice_id = uuid.UUID(str(event["invoice_id"]))
    invoice: dict | None
    if envelope.type == "kontor.invoice.issued.v1":  # the invoice as issued: what later events refer to
        invoice = await repository.put_known_invoice(session, event["invoice"])
    else:
        invoice = await repository.known_invoice(session, invoice_id)
    members = await repository.members_by_id(session, [event["member_id"]])
    order = await repository.known_order(session, uuid.UUID(str(event["order_id"])))
    planned = model.plan_invoice_event(envelope.type, event, invoice, members[event["member_id"]], order)
    return await _store(session, deps, envelope, planned, _names(members))


async def on_standing_changed(session: AsyncSession, deps: Deps, event: dict, envelope: Envelope) -> int:
    orders = await repository.open_orders_of_client(session, uuid.UUID(str(event["client_id"])))
    by_member: dict[str, list[dict]] = {}
    for order in orders:
        by_member.setdefault(order["member_id"], []).append(order)
    members = await repository.members_by_id(session, by_member)
    planned = model.plan_standing_changed(event, [(m, members[m], o) for m, o in by_member.items()])
    return await _store(session, deps, envelope, planned, _names(members))


async def put_member(session: AsyncSession, member: model.Member) -> None:
    await repository.put_member(session, member)


# --- delivery -----------------------------------------------------------------------------

async def _attempt(deps: Deps, row) -> list[model.Refused]:
    """Fetch the e-mail's documents, build it and hand it to the SMTP server; the recipients it
    refused while it accepted the others. Raises why not."""
    s = deps.settings
    if deps.mailer is None or deps.documents is None:
        raise RuntimeError("delivering needs Deps.mailer and Deps.documents")
    documents, mailer = deps.documents, deps.mailer
    attachments = [(a["filename"], a["media_type"],
                    await documents.fetch(model.DocumentRef(a["filename"], a["media_type"], a["sha256"],
                                                                 a.get("url"))))
                   for a in row.attachments]
    message = build_message(sender=s.mail_from, reply_to=s.reply_to, to=list(row.to), cc=list(row.cc),
                            subject=row.subject, text=model.with_link(row.text_body, row.secret_link),
                            html=model.with_link(row.html_body, row.secret_link, lambda v: str(escape(v))),
                            message_id=row.message_id, language=row.language, attachments=attachments)
    return await mailer.send(message)


async def deliver_one(session_factory: async_sessionmaker[AsyncSession], deps: Deps,
                      on_claimed: Callable[[bool], object] | None = None) -> str | None:
    """Send the next due e-mail, if any; its status afterwards (sent, pending for a retry, failed),
    or None when none is due. One transaction holds the row from claim to outcome, so no other
    replica or concurrent sender takes it meanwhile; a crash before the commit leaves it due again.
    `on_claimed` is told at once whether an e-mail was claimed (the loop then claims the next).

    Whatever goes wrong with this one e-mail (a refusal, a dropped line, `delivery_timeout_s`
    passing, a bug in building it) is an attempt that failed, recorded on this e-mail alone.
    Should recording its outcome fail for a reason of the e-mail's own (not the database's or
    the broker's), that is undone to a savepoint and the e-mail failed for good, still locked:
    left due, it would be claimed again at once, for ever."""
    s = deps.settings
    async with session_factory() as session, session.begin():
        row = await repository.claim_due_email(session, deps.clock.now())
        if on_claimed is not None:
            on_claimed(row is not None)
        if row is None:
            return None
        error: SendFailed | None = None
        refused: list[model.Refused] = []
        try:
            async with asyncio.timeout(s.delivery_timeout_s):
                refused = await _attempt(deps, row) or []
        except SendFailed as e:
            error = e
        except TimeoutError:
            error = SendFailed(f"not sent within {s.delivery_timeout_s:g} s (delivery_timeout_s)", permanent=False)
        except Exception as e:
            log.exception("e-mail could not be built or sent", email_id=str(row.id), template=row.template)
            # ValueError: what the SMTP client refuses to send (a control character in an address),
            # UnicodeError: text that cannot be encoded; neither changes by trying again
            error = SendFailed(f"unexpected error: {type(e).__name__}: {e}",
                               permanent=isinstance(e, (ValueError, UnicodeError)))
        try:
            async with session.begin_nested():
                return await _record(session, deps, row, error, refused)
        except Exception as e:
            if is_infrastructure_fault(e):
                raise  # the e-mail stays due (rolled back); the loop logs it
            log.exception("recording the outcome of an e-mail failed; it is failed for good", email_id=str(row.id))
            await _fail_for_good(session, deps, row, f"recording its outcome failed: {type(e).__name__}: {e}")
            return model.FAILED


async def _fail_for_good(session: AsyncSession, deps: Deps, row, why: str) -> None:
    now = deps.clock.now()
    reason = model.printable(why)
    await repository.update_email(session, row.id, status=model.FAILED, attempts=row.attempts + 1,
                                  next_attempt_at=None, last_error=reason)
    await deps.outbox.add(session, EmailFailedV1(email_id=row.id, email=contract(row), attempts=row.attempts + 1,
                                                 occurred_at=now, reason=reason), time=now)


async def _record(session: AsyncSession, deps: Deps, row, error: SendFailed | None,
                  refused: list[model.Refused]) -> str:
    """Store the outcome of one attempt with its event; the e-mail's status afterwards."""
    s = deps.settings
    # after the attempt, which may have taken long: backoff counts from its end
    now = deps.clock.now()
    outcome = model.after_attempt(
        model.Delivery(row.status, row.attempts, row.next_attempt_at, row.last_error), now=now,
        error=model.printable(str(error)) if error else None, permanent=bool(error and error.permanent),
        max_attempts=s.max_attempts, base_s=s.retry_base_s, max_s=s.retry_max_delay_s)
    await repository.update_email(session, row.id, status=outcome.status, attempts=outcome.attempts,
                                  next_attempt_at=outcome.next_attempt_at, last_error=outcome.last_error,
                                  sent_at=now if outcome.status == model.SENT else None,
                                  **({"refused": [*row.refused, *_refused(refused)]} if refused else {}))
    email = contract(row)
    if outcome.status == model.SENT:
        await deps.outbox.add(session, EmailSentV1(email_id=row.id, email=email, attempts=outcome.attempts,
                                                   occurred_at=now, message_id=row.message_id), time=now)
        metrics.EMAIL_DELIVERY_SECONDS.observe(max(0.0, (now - row.created_at).total_seconds()))
        log.info("e-mail sent", email_id=str(row.id), template=row.template, to=list(row.to), cc=list(row.cc),
                 attempts=outcome.attempts, refused=_refused(refused) or None)
    elif outcome.status == model.FAILED:
        await deps.outbox.add(session, EmailFailedV1(email_id=row.id, email=email, attempts=outcome.attempts,
                                                     occurred_at=now, reason=outcome.last_error or "failed"),
                              time=now)
        log.error("e-mail failed for good", email_id=str(row.id), template=row.template, reason=outcome.last_error,
                  attempts=outcome.attempts)
    else:
        log.warning("e-mail not sent, will retry", email_id=str(row.id), template=row.template,
                    error=outcome.last_error, attempts=outcome.attempts,
                    next_attempt_at=outcome.next_attempt_at.isoformat() if outcome.next_attempt_at else None)
    return outcome.status

"""Who is told what, and what happens to an e-mail on its way (pure; no I/O).

The planning functions turn one event (as a plain dict of its contract) plus what the
service knows (members' addresses, open orders) into the e-mails to send. Recipient rules
(DESIGN.md §4 and the seeds):

- the contact person of the order receives everything about the order that concerns the
  client (the confirmation request);
- invoices, reminders and cancellation invoices go to the contact person and to the client's
  invoice e-mail; when both are the same address, that is one e-mail; the member is in cc;
- everything about the member's own work (review, confirmation, drafts) goes to the member;
- a change of a client's standing goes to every member with an open order for that client.

An e-mail is identified by (event, template, recipients): planning the same event twice gives
the same keys, so a redelivered event never sends a second e-mail.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from email_validator import EmailNotValidError, validate_email

LANGUAGES = ("de", "en")
# orders a member is still working on with the client (the standing matters to them)
OPEN_ORDER_STATUSES = frozenset({"smart_review", "client_confirmation", "active", "cancellation_requested"})

PENDING, SENT, FAILED = "pending", "sent", "failed"


@dataclass(frozen=True)
class Member:
    member_id: str
    email: str
    name: str | None = None
    language: str = "de"


@dataclass(frozen=True)
class DocumentRef:
    """An attachment by reference (claim check): fetched from its owner at sending time and
    checked against its SHA-256, so the e-mail carries exactly the stored document."""

    filename: str
    media_type: str
    sha256: str
    url: str | None


@dataclass(frozen=True)
class Planned:
    template: str
    language: str
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    context: dict = field(default_factory=dict)
    attachments: tuple[DocumentRef, ...] = ()
    order_id: uuid.UUID | None = None
    invoice_id: uuid.UUID | None = None
    client_id: uuid.UUID | None = None
    member_id: str | None = None
    problem: str | None = None  # set when it cannot be sent at all (e.g. no address on file)
    key: str | None = None  # who it is for, when that is not just the addresses (a member, by id)
    # the client's confirmation link: only the e-mail sent carries it; the stored bodies carry
    # `redacted_link(secret_link)` in its place (members and advisors read the delivery log)
    secret_link: str | None = None
    refused: tuple[Refused, ...] = ()  # recipients left out (an address that is not one), with why

    @property
    def recipients_key(self) -> str:
        return self.key or ",".join(sorted({a.lower() for a in self.to}))


@dataclass(frozen=True)
class Refused:
    """A recipient the e-mail did not reach: an address that is not one, or refused by the SMTP server."""

    address: str
    reason: str


def address_problem(address: str) -> str | None:
    """Why `address` cannot be sent to (its syntax, by email-validator), or None."""
    try:
        validate_email(address, check_deliverability=False)  # whether the domain takes mail is SMTP's to say
    except EmailNotValidError as e:
        return f"not a valid e-mail address: {e}"
    return None


def without_invalid_addresses(p: Planned) -> Planned:
    """The planned e-mail to its valid addresses only; the others are recorded as refused. With no
    valid address in To left, it cannot be sent at all (`problem`)."""
    if p.problem:
        return p
    refused = [Refused(a, why) for a in (*p.to, *p.cc) if (why := address_problem(a))]
    if not refused:
        return p
    bad = {r.address for r in refused}
    to, cc = tuple(a for a in p.to if a not in bad), tuple(a for a in p.cc if a not in bad)
    problem = None if to else "; ".join(f"{printable(r.address)}: {r.reason}" for r in refused)
    return replace(p, to=to, cc=cc, refused=p.refused + tuple(refused), problem=problem,
                   key=p.recipients_key)  # the same e-mail (dedup key) as planned with every address


REDACTED = "…"


def redacted_link(link: str) -> str:
    """The confirmation link as members and advisors see it: its secret last part left out."""
    base, _, _ = link.rpartition("/")
    return f"{base}/{REDACTED}" if base else REDACTED


def with_link(body: str, link: str | None, escape=lambda s: s) -> str:
    """The stored body as the client receives it: the redacted link replaced by the real one
    (`escape` for HTML bodies)."""
    if not link:
        return body
    return body.replace(escape(redacted_link(link)), escape(link))


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str, limit: int = 2000) -> str:
    """`text` fit for a log, a header or a database column: control characters and lone
    surrogates shown as escapes, at most `limit` characters."""
    text = _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def attachment_filename(name: str) -> str:
    """The file name an attachment goes out under: no control characters (CR/LF would break the
    MIME header), no path; non-Latin-1 characters stay (RFC 2231 encodes them)."""
    clean = " ".join(_UNPRINTABLE.sub(" ", name).replace("/", "_").replace("\\", "_").split())
    clean = clean.encode("utf-8", "replace").decode("utf-8")  # no lone surrogates
    return clean[:200] or "attachment"


def _language(value: str | None) -> str:
    return value if value in LANGUAGES else "de"


def _same(a: str | None, b: str | None) -> bool:
    return bool(a and b and a.strip().lower() == b.strip().lower())


def client_recipients(contact_email: str | None, invoice_email: str | None) -> tuple[str, ...]:
    """The contact person and the client's invoice e-mail; one address when they are the same."""
    to = [a for a in (contact_email, invoice_email) if a]
    if len(to) == 2 and _same(*to):
        to = to[:1]
    return tuple(to)


def to_member(template: str, member_id: str, member: Member | None, context: dict, **ids) -> Planned:
    if member is None:
        return Planned(template, "de", (), context=context, member_id=member_id, key=f"member:{member_id}",
                       problem=f"no e-mail address on file for member {member_id!r} (PUT /members/{member_id})", **ids)
    return Planned(template, _language(member.language), (member.email,), context=context, member_id=member_id,
                   key=f"member:{member_id}", **ids)


def _documents(documents, kinds=("pdf", "xrechnung", "attachment")) -> tuple[DocumentRef, ...]:
    return tuple(DocumentRef(attachment_filename(d["filename"]), d["media_type"], d["sha256"], d.get("url"))
                 for d in documents or () if d.get("kind", "attachment") in kinds)


# --- orders -------------------------------------------------------------------------------

MEMBER_ORDER_TEMPLATES = {
    "kontor.order.offer-expiring.v1": "order_offer_expiring",
    "kontor.order.confirmed.v1": "order_confirmed",
    "kontor.order.changes-requested.v1": "order_changes_requested",
    "kontor.order.rejected.v1": "order_rejected",
    "kontor.order.approved.v1": "order_approved",
    "kontor.order.renewal-notice-due.v1": "order_renewal_notice_due",
}


def plan_order_event(event_type: str, event: dict, member: Member | None) -> list[Planned]:
    order = event["order"]
    ids: dict[str, Any] = {"order_id": uuid.UUID(str(event["order_id"])),
                           "client_id": uuid.UUID(str(order["client"]["client_id"]))}
    if event_type == "kontor.order.sent-for-confirmation.v1":
        contact = order["contact_person"]
        link = event["confirmation_url"]
        return [Planned("order_sent_for_confirmation", _language(order["client"].get("language")), (contact["email"],),
                        context={"order": order, "confirmation_url": redacted_link(link),
                                 "valid_until": event["valid_until"]},
                        attachments=_documents(order.get("attachments")), member_id=order["member_id"],
                        secret_link=link, problem=None if link.startswith(("https://", "http://"))
                        else "the confirmation link is not an http(s) URL", **ids)]
    template = MEMBER_ORDER_TEMPLATES.get(event_type)
    if template is None:
        return []
    return [to_member(template, order["member_id"], member, {"order": order, "event": event}, **ids)]


# --- invoices -----------------------------------------------------------------------------

def plan_invoice_event(event_type: str, event: dict, invoice: dict | None, member: Member | None,
                       order: dict | None) -> list[Planned]:
    """`invoice` is the invoice as last issued (for reminders), `order` the order's last state
    (its documents go with the invoice)."""
    ids = {"invoice_id": uuid.UUID(str(event["invoice_id"])), "order_id": uuid.UUID(str(event["order_id"])),
           "client_id": uuid.UUID(str(event["client_id"]))}
    member_id = event["member_id"]
    if event_type == "kontor.invoice.draft-created.v1":
        return [to_member("invoice_draft_created", member_id, member,
                          {"invoice": event["invoice"], "check_until": event["check_until"]}, **ids)]
    if event_type == "kontor.invoice.issued.v1":
        invoice = event["invoice"]
        documents = _documents(invoice.get("documents")) + _documents((order or {}).get("attachments"))
        return [_to_client("invoice_issued", invoice, member, member_id, {"invoice": invoice}, documents, ids)]
    if event_type == "kontor.invoice.reminder-sent.v1":
        if invoice is None:
            raise UnknownInvoice(event["invoice_id"])
        return [_to_client("invoice_reminder", invoice, member, member_id, {"invoice": invoice, "event": event},
                           _documents(invoice.get("documents"), kinds=("pdf",)), ids)]
    if event_type == "kontor.invoice.cancelled.v1":
        cancellation = event["cancellation"]
        return [_to_client("invoice_cancelled", cancellation, member, member_id,
                           {"invoice": cancellation, "event": event}, _documents(cancellation.get("documents")),
                           ids)]
    return []


class UnknownInvoice(Exception):
    """A reminder for an invoice whose issue this service never saw (its recipients are unknown)."""


def _to_client(template: str, invoice: dict, member: Member | None, member_id: str, context: dict,
               documents: tuple[DocumentRef, ...], ids: dict) -> Planned:
    to = client_recipients(invoice.get("contact_email"), invoice.get("invoice_email"))
    cc = (member.email,) if member and not any(_same(member.email, a) for a in to) else ()
    problem = None if to else "the invoice names neither a contact person nor an invoice e-mail"
    return Planned(template, _language(invoice.get("language")), to, cc, context={**context, "member_in_cc": bool(cc)},
                   attachments=documents, member_id=member_id, problem=problem, **ids)


# --- clients ------------------------------------------------------------------------------

def plan_standing_changed(event: dict, members: list[tuple[str, Member | None, list[dict]]]) -> list[Planned]:
    """`members`: each member with an open order for the client, and those orders."""
    client = event["client"]
    ids = {"client_id": uuid.UUID(str(event["client_id"]))}
    return [to_member("client_standing_changed", member_id, member,
                      {"client": client, "previous": event["previous"], "orders": orders}, **ids)
            for member_id, member, orders in members]


# --- delivery -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Delivery:
    """Where one e-mail stands: pending (with its next attempt), sent or failed."""

    status: str = PENDING
    attempts: int = 0
    next_attempt_at: dt.datetime | None = None
    last_error: str | None = None


def retry_delay(attempt: int, *, base_s: float, max_s: float) -> float:
    """Exponential backoff: base, 2×base, 4×base ... capped."""
    return min(base_s * 2 ** max(attempt - 1, 0), max_s)


def after_attempt(d: Delivery, *, now: dt.datetime, error: str | None, permanent: bool, max_attempts: int,
                  base_s: float, max_s: float) -> Delivery:
    attempts = d.attempts + 1
    if error is None:
        return replace(d, status=SENT, attempts=attempts, next_attempt_at=None, last_error=None)
    if permanent or attempts >= max_attempts:
        why = error if permanent else f"gave up after {attempts} attempts: {error}"
        return replace(d, status=FAILED, attempts=attempts, next_attempt_at=None, last_error=why)
    return replace(d, attempts=attempts, last_error=error,
                   next_attempt_at=now + dt.timedelta(seconds=retry_delay(attempts, base_s=base_s, max_s=max_s)))

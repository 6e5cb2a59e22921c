"""Realistic events for every e-mail the notifications service sends, built from the contracts."""
from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from decimal import Decimal as D

from kontor.contracts.clients import ClientSnapshotV1, ClientStandingChangedV1, ClientStandingV1
from kontor.contracts.common import Actor, Address
from kontor.contracts.invoices import (
    InvoiceCancelledV1,
    InvoiceDocumentV1,
    InvoiceDraftCreatedV1,
    InvoiceIssuedV1,
    InvoiceReminderSentV1,
    InvoiceV1,
    VatBreakdownV1,
)
from kontor.contracts.orders import (
    AttachmentV1,
    ContactPersonV1,
    OrderApprovedV1,
    OrderChangesRequestedV1,
    OrderClientV1,
    OrderConfirmedV1,
    OrderLineV1,
    OrderOfferExpiringV1,
    OrderRejectedV1,
    OrderRenewalNoticeDueV1,
    OrderSentForConfirmationV1,
    OrderV1,
    PlannedInvoiceV1,
    VatV1,
)

NOW = dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)
CLIENT_ID = uuid.UUID("11111111-1111-4111-8111-111111111111")


def order(language="de", member_id="member-1", status="client_confirmation", attachments=(),
          contact_email="erika@acme.example", client_id=CLIENT_ID) -> OrderV1:
    lines = (OrderLineV1(description="Design-Workshop", quantity=D(2), unit="day", unit_price=D("640.00"),
                         net_amount=D("1280.00")),)
    return OrderV1(
        order_id=uuid.uuid4(), member_id=member_id, status=status,
        client=OrderClientV1(client_id=client_id, name="ACME Werkstatt GmbH", kind="company", vat_id="DE811569869",
                             country="DE", language=language),
        contact_person=ContactPersonV1(name="Erika Muster", email=contact_email), sector="design",
        place_of_service="DE", project_name="Relaunch 2027", currency="EUR", lines=lines, net_total=D("1280.00"),
        vat=(VatV1(category="S", rate=D(19), taxable_amount=D("1280.00"), tax_amount=D("243.20")),),
        gross_total=D("1523.20"), service_start=dt.date(2027, 1, 1), service_end=dt.date(2027, 3, 31),
        confirmation_mode="send", offer_valid_until=dt.date(2026, 12, 4),
        schedule=(PlannedInvoiceV1(seq=1, kind="after_completion", invoice_date=dt.date(2027, 3, 31),
                                   due_date=dt.date(2027, 4, 14), lines=lines, net_amount=D("1280.00")),),
        attachments=tuple(attachments), version=4)


def attachment(url: str, content: bytes, filename="Angebot.pdf") -> AttachmentV1:
    return AttachmentV1(attachment_id=uuid.uuid4(), filename=filename, media_type="application/pdf",
                        size=len(content), sha256=hashlib.sha256(content).hexdigest(), url=url)


def _order_event(cls, o: OrderV1, actor="advisor", **kw):
    return cls(order_id=o.order_id, order=o, occurred_at=NOW, actor=Actor(kind=actor), **kw)


def order_events(o: OrderV1) -> dict:
    """Every order event that sends an e-mail, by template."""
    return {
        "order_sent_for_confirmation": _order_event(
            OrderSentForConfirmationV1, o, confirmation_url="http://127.0.0.1:8101/confirm/tok-123",
            valid_until=dt.datetime(2026, 12, 4, 22, 59, 59, tzinfo=dt.UTC)),
        "order_offer_expiring": _order_event(OrderOfferExpiringV1, o, actor="system",
                                             offer_valid_until=dt.date(2026, 12, 4)),
        "order_renewal_notice_due": _order_event(
            OrderRenewalNoticeDueV1, o.model_copy(update={"status": "active"}), actor="system",
            notice_deadline=dt.date(2027, 2, 28), term_end=dt.date(2027, 3, 31), renews_until=dt.date(2027, 6, 30),
            term_months=3),
        "order_confirmed": _order_event(OrderConfirmedV1, o.model_copy(update={"status": "active"}), actor="client"),
        "order_changes_requested": _order_event(OrderChangesRequestedV1, o, actor="client",
                                                message="Bitte den Workshop auf 3 Tage erweitern.\nDanke!"),
        "order_rejected": _order_event(OrderRejectedV1, o.model_copy(update={"status": "rejected"}),
                                       rejected_by="advisor", reason="Tätigkeit ist nicht abrechenbar"),
        "order_approved": _order_event(OrderApprovedV1, o),
    }


def invoice(o: OrderV1, number="2027-000001", invoice_email="rechnung@acme.example", documents=(), language=None,
            kind="invoice", **kw) -> InvoiceV1:
    return InvoiceV1(
        invoice_id=uuid.uuid4(), number=number, kind=kind, order_id=o.order_id, member_id=o.member_id,
        client_id=o.client.client_id, client_name=o.client.name, currency="EUR", issue_date=dt.date(2027, 3, 31),
        due_date=dt.date(2027, 4, 14), invoice_date=dt.date(2027, 3, 31), status="invoiced",
        project_name=o.project_name, contact_name=o.contact_person.name, contact_email=o.contact_person.email,
        invoice_email=invoice_email, language=language or o.client.language, net_total=D("1280.00"),
        tax_total=D("243.20"), gross_total=D("1523.20"), amount_due=D("1523.20"),
        vat_breakdown=(VatBreakdownV1(category="S", rate=D(19), taxable_amount=D("1280.00"), tax_amount=D("243.20")),),
        documents=tuple(documents), **kw)


def document(kind: str, url: str, content: bytes, filename: str) -> InvoiceDocumentV1:
    return InvoiceDocumentV1(kind=kind, filename=filename, media_type="application/pdf" if kind == "pdf"
                             else "application/xml", sha256=hashlib.sha256(content).hexdigest(), url=url)


def _invoice_event(cls, inv: InvoiceV1, **kw):
    return cls(invoice_id=inv.invoice_id, client_id=inv.client_id, order_id=inv.order_id, member_id=inv.member_id,
               occurred_at=NOW, actor=Actor(kind="system"), **kw)


def invoice_events(inv: InvoiceV1, cancellation: InvoiceV1) -> dict:
    draft = inv.model_copy(update={"number": None, "issue_date": None, "status": "draft", "documents": ()})
    return {
        "invoice_draft_created": _invoice_event(InvoiceDraftCreatedV1, draft, invoice=draft,
                                                check_until=dt.date(2027, 3, 30)),
        "invoice_issued": _invoice_event(InvoiceIssuedV1, inv, invoice=inv),
        "invoice_reminder": _invoice_event(InvoiceReminderSentV1, inv, number=inv.number, reminder=1,
                                           due_date=inv.due_date, open_amount=D("1523.20"), currency="EUR"),
        "invoice_cancelled": _invoice_event(InvoiceCancelledV1, inv, number=inv.number, currency="EUR",
                                            reason="falscher Leistungszeitraum", cancellation=cancellation,
                                            refund_due=D("500.00")),
    }


def standing_changed(language="de", client_id=CLIENT_ID) -> ClientStandingChangedV1:
    client = ClientSnapshotV1(
        client_id=client_id, kind="company", name="ACME Werkstatt GmbH", language=language,
        address=Address(street="Hauptstraße 1", postal_code="10115", city="Berlin", country="DE"),
        standing=ClientStandingV1(status="advance_payment_only", reason="invoice 2027-000001 overdue",
                                  source="debt_rule", since=NOW), version=3)
    return ClientStandingChangedV1(client_id=client_id, client=client, occurred_at=NOW, actor=Actor(kind="system"),
                                   previous=ClientStandingV1(status="ok", source="initial"))


class DocumentServer:
    """A real HTTP server standing in for the document endpoints of orders and invoicing:
    serves fixed bytes by path to a bearer token, and counts the requests."""

    def __init__(self, documents: dict[str, bytes]) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        served = self.requests = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                served.append((self.path, self.headers.get("Authorization", "")))
                body = documents.get(self.path)
                if not self.headers.get("Authorization", "").startswith("Bearer "):
                    self.send_response(401)
                    body = b""
                elif body is None:
                    self.send_response(404)
                    body = b""
                else:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def __enter__(self) -> DocumentServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class SmtpServer:
    """A real SMTP server (aiosmtpd) this test can stop and start, storing into a Maildir.

    Addresses in `refuse` are answered 550 (a permanent failure), those in `defer` 451 (a
    transient one); at an address in `stall` the server stops answering (RCPT hangs) until
    `release()`. `connections` counts the SMTP sessions clients opened (each says EHLO once),
    `stalls` how often a session got stuck at a stalling address; `data_delay_s` slows down
    every accepted message a little, as a real server's disk and filters do."""

    def __init__(self, maildir, refuse: frozenset[str] = frozenset(), *, defer: frozenset[str] = frozenset(),
                 stall: frozenset[str] = frozenset(), data_delay_s: float = 0.0) -> None:
        import threading

        from kontor.testing import free_port

        self.port = free_port()
        self.maildir, self.refuse, self.controller = maildir, refuse, None
        self.defer, self.stall, self.data_delay_s = defer, stall, data_delay_s
        self.connections = 0
        self.stalls = 0
        self._released = threading.Event()

    def start(self) -> None:
        import asyncio

        from aiosmtpd.controller import Controller

        from kontor.devinfra.smtp import MaildirHandler

        server = self

        class Handler(MaildirHandler):
            async def handle_EHLO(self, smtp, session, envelope, hostname, responses):
                server.connections += 1  # the handler runs in the server's one thread: no lock needed
                session.host_name = hostname
                return responses

            async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
                if address.lower() in server.refuse:
                    return "550 5.1.1 no such user here"
                if address.lower() in server.defer:
                    return "451 4.3.0 mailbox busy, try again later"
                if address.lower() in server.stall:
                    server.stalls += 1
                    # a threading.Event, set from the test's thread: polled (cancelled when the client hangs up)
                    while not server._released.is_set():  # noqa: ASYNC110
                        await asyncio.sleep(0.02)
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, smtp, session, envelope):
                if server.data_delay_s:
                    await asyncio.sleep(server.data_delay_s)
                return await super().handle_DATA(smtp, session, envelope)

        self.controller = Controller(Handler(self.maildir), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def release(self) -> None:
        """The stalling addresses are answered from now on."""
        self._released.set()

    def stop(self) -> None:
        self.controller.stop()
        self.controller = None

    def messages(self):
        from kontor.devinfra.smtp import read_messages
        return read_messages(self.maildir)

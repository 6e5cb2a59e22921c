"""The local SMTP server of `make up` and the tests: it accepts mail and keeps every message whole."""
import asyncio
import hashlib
import smtplib
from email.message import EmailMessage

import pytest

from kontor.devinfra.smtp import read_messages

pytestmark = pytest.mark.integration


async def test_smtp_server_accepts_mail_and_keeps_it_with_attachments(infra):
    if infra.maildir is None:
        pytest.skip("the SMTP server comes from KONTOR_TEST_SMTP without KONTOR_TEST_MAILDIR: nothing to read back")
    before = len(read_messages(infra.maildir))
    attachment = bytes(range(256)) * 64  # binary, 16 KiB
    msg = EmailMessage()
    msg["From"] = "kontor@coop.example"
    msg["To"] = "client@acme.example"
    msg["Subject"] = "Rechnung 2026-000001 — Übersicht"
    msg.set_content("Guten Tag,\nanbei die Rechnung.\n")
    msg.add_attachment(attachment, maintype="application", subtype="pdf", filename="2026-000001.pdf")

    def send() -> None:
        with smtplib.SMTP(infra.smtp_host, infra.smtp_port, timeout=10) as smtp:
            refused = smtp.send_message(msg, to_addrs=["client@acme.example", "member@coop.example"])
            assert refused == {}

    await asyncio.to_thread(send)
    messages = read_messages(infra.maildir)
    assert len(messages) == before + 1
    stored = messages[-1]
    assert stored["Subject"] == "Rechnung 2026-000001 — Übersicht"
    assert stored["X-Kontor-Envelope-From"] == "kontor@coop.example"
    assert stored["X-Kontor-Envelope-To"] == "client@acme.example, member@coop.example"
    [part] = list(stored.iter_attachments())
    assert part.get_filename() == "2026-000001.pdf"
    assert hashlib.sha256(part.get_content()).hexdigest() == hashlib.sha256(attachment).hexdigest()
    assert "anbei die Rechnung" in stored.get_body(("plain",)).get_content()

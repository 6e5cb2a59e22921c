"""Sending one e-mail over SMTP with aiosmtplib, and telling transient from permanent failures."""
from __future__ import annotations

import asyncio
import socket
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from kontor_notifications.settings import NotificationsSettings


class SendFailed(Exception):
    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent


def build_message(*, sender: str, reply_to: str | None, to: list[str], cc: list[str], subject: str, text: str,
                  html: str, message_id: str, language: str,
                  attachments: list[tuple[str, str, bytes]]) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    # the same on every attempt: a receiver can tell a retried e-mail from a new one
    msg["Message-ID"] = message_id
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    for filename, media_type, content in attachments:
        maintype, _, subtype = media_type.partition("/")
        msg.add_attachment(content, maintype=maintype, subtype=subtype or "octet-stream", filename=filename)
    msg["Content-Language"] = language  # after the body: setting content drops Content-* headers
    return msg


class Mailer:
    def __init__(self, settings: NotificationsSettings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> None:
        s = self.settings
        try:
            errors, _ = await aiosmtplib.send(
                message, hostname=s.smtp_host, port=s.smtp_port, username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                use_tls=s.smtp_tls, start_tls=s.smtp_starttls if s.smtp_starttls else False,
                timeout=s.smtp_timeout_s)
        except aiosmtplib.SMTPRecipientsRefused as e:
            codes = [r.code for r in e.recipients]
            raise SendFailed(f"recipients refused: {'; '.join(f'{r.recipient}: {r.code} {r.message}' for r in e.recipients)}",
                             permanent=all(c >= 500 for c in codes)) from e
        except aiosmtplib.SMTPResponseException as e:
            raise SendFailed(f"SMTP {e.code}: {e.message}", permanent=e.code >= 500) from e
        except (aiosmtplib.SMTPException, OSError, socket.gaierror, asyncio.TimeoutError) as e:
            raise SendFailed(f"SMTP server unreachable: {type(e).__name__}: {e}", permanent=False) from e
        if errors:  # some recipients were refused, the others accepted: the e-mail went out
            return

"""Sending e-mails over SMTP with aiosmtplib, over a few reused connections, and telling
transient from permanent failures.

`Mailer` keeps a small pool of connected `aiosmtplib.SMTP` clients (`SmtpPool`), so a backlog
of e-mails does not pay for a TCP (and TLS, and AUTH) handshake per e-mail. Each client is
lent to one sender at a time. A client whose use ended in any error is closed, never reused:
after a timeout or a dropped line nobody knows where its SMTP dialogue stands. A client idle
for a while is checked with NOOP before it is reused (the server or a NAT box may have dropped
it silently), one idle for long is closed (`close_idle`), and one that has carried
`smtp_max_messages_per_connection` e-mails is closed politely (servers limit messages per
session).
"""
from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib
from aiosmtplib.email import extract_recipients, extract_sender

from kontor.logging import get_logger
from kontor_notifications.domain.model import Refused, printable
from kontor_notifications.settings import NotificationsSettings

log = get_logger(__name__)


# How messages are written and put on the wire: headers folded at RFC 5322's hard limit of 998, not
# at 78, because Python's folder loses the space between two encoded words it splits a line at
# ("Relaunch 2027 – Kündigung" arrived as "2027– Kündigung"); bodies 7-bit clean for any server.
POLICY = policy.SMTP.clone(max_line_length=998, cte_type="7bit")


class SendFailed(Exception):
    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent


def build_message(*, sender: str, reply_to: str | None, to: list[str], cc: list[str], subject: str, text: str,
                  html: str, message_id: str, language: str,
                  attachments: list[tuple[str, str, bytes]]) -> EmailMessage:
    msg = EmailMessage(policy=POLICY)
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


@dataclass
class _Connection:
    client: aiosmtplib.SMTP
    opened_at: float
    last_used: float
    messages: int = 0


class SmtpPool:
    """Up to `size` connected SMTP clients; `connection()` lends one to one sender at a time.

    Idle clients are kept last-in first-out, so when fewer senders are busy the surplus ones
    stay idle and are the ones `close_idle` closes."""

    def __init__(self, settings: NotificationsSettings, *, size: int,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.size = size
        self._now = monotonic
        self._idle: list[_Connection] = []
        self._slots: asyncio.Semaphore | None = None  # made on first use, in the running loop
        self._closed = False
        self.opened = 0  # connections opened so far (for logs and tests)

    def _new_client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host, port=s.smtp_port, username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            use_tls=s.smtp_tls, start_tls=bool(s.smtp_starttls), timeout=s.smtp_timeout_s)

    async def _open(self) -> _Connection:
        client = self._new_client()
        await client.connect()
        self.opened += 1
        now = self._now()
        log.debug("smtp connection opened", host=self.settings.smtp_host, port=self.settings.smtp_port,
                  opened=self.opened)
        return _Connection(client, now, now)

    async def _usable(self, conn: _Connection) -> bool:
        """Whether an idle client can carry the next e-mail; if not, it is closed."""
        s = self.settings
        if not conn.client.is_connected:  # the server hung up meanwhile
            conn.client.close()
            return False
        idle = self._now() - conn.last_used
        if idle > s.smtp_pool_idle_s or conn.messages >= s.smtp_max_messages_per_connection:
            await _quit(conn.client)
            return False
        if idle > s.smtp_check_idle_after_s:
            try:
                await conn.client.noop(timeout=min(s.smtp_timeout_s, 10))
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as e:
                log.info("stale smtp connection replaced", error=f"{type(e).__name__}: {e}", idle_s=round(idle, 1))
                conn.client.close()
                return False
        return True

    async def _take(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if await self._usable(conn):
                return conn
        return await self._open()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[aiosmtplib.SMTP]:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.size)
        async with self._slots:
            conn = await self._take()
            try:
                yield conn.client
            except BaseException:
                # a timeout (cancellation), a dropped line, a refusal: where the dialogue stands
                # is not known for sure, so this client carries nothing more
                conn.client.close()
                raise
            conn.messages += 1
            conn.last_used = self._now()
            if self._closed:
                await _quit(conn.client)
            else:
                self._idle.append(conn)

    async def close_idle(self) -> int:
        """Close the clients idle for longer than `smtp_pool_idle_s`; how many were closed."""
        limit = self._now() - self.settings.smtp_pool_idle_s
        stale = [c for c in self._idle if c.last_used < limit or not c.client.is_connected]
        self._idle = [c for c in self._idle if c not in stale]
        await asyncio.gather(*(_quit(c.client) for c in stale))
        if stale:
            log.debug("idle smtp connections closed", closed=len(stale), kept=len(self._idle))
        return len(stale)

    async def close(self) -> None:
        """Close every idle client; those lent out are closed when they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(c.client) for c in idle))


async def _quit(client: aiosmtplib.SMTP) -> None:
    """Say QUIT if the line is still up, and close it in any case."""
    try:
        if client.is_connected:
            await client.quit(timeout=5)
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        pass
    finally:
        client.close()


class Mailer:
    """Sends e-mails over the pooled connections; `close()` when done with it."""

    def __init__(self, settings: NotificationsSettings, *, pool_size: int | None = None) -> None:
        self.settings = settings
        self.pool = SmtpPool(settings, size=pool_size or settings.delivery_concurrency)

    async def send(self, message: EmailMessage) -> list[Refused]:
        """Hand `message` to the SMTP server; the recipients it refused while accepting the
        others (the e-mail went out to those). Raises SendFailed when it did not go out."""
        try:
            async with self.pool.connection() as client:
                # flattened with POLICY: send_message would fold the headers again at 78
                errors, _ = await client.sendmail(extract_sender(message) or "", extract_recipients(message),
                                                  message.as_bytes(policy=POLICY))
        except aiosmtplib.SMTPRecipientsRefused as e:
            codes = [r.code for r in e.recipients]
            reasons = "; ".join(f"{printable(r.recipient)}: {r.code} {printable(r.message)}" for r in e.recipients)
            raise SendFailed(f"recipients refused: {reasons}", permanent=all(c >= 500 for c in codes)) from e
        except aiosmtplib.SMTPResponseException as e:
            raise SendFailed(f"SMTP {e.code}: {e.message}", permanent=e.code >= 500) from e
        except aiosmtplib.SMTPTimeoutError as e:
            raise SendFailed(f"SMTP server timed out: {e}", permanent=False) from e
        except (aiosmtplib.SMTPException, OSError, socket.gaierror, TimeoutError) as e:
            raise SendFailed(f"SMTP server unreachable: {type(e).__name__}: {e}", permanent=False) from e
        # some recipients were refused, the others accepted: the e-mail went out to those
        refused = [Refused(address, f"{answer.code} {answer.message}") for address, answer in errors.items()]
        if refused:
            log.warning("some recipients refused", refused={r.address: r.reason for r in refused},
                        message_id=message["Message-ID"])
        return refused

    async def close_idle(self) -> int:
        return await self.pool.close_idle()

    async def close(self) -> None:
        await self.pool.close()

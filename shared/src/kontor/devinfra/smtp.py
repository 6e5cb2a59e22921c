"""A local SMTP server (aiosmtpd) that accepts every message and keeps it in a Maildir.

Run: `python -m kontor.devinfra.smtp --port 1025 --maildir .local/mail`. Each accepted
message is stored whole (headers, body, attachments) with the envelope sender and
recipients in `X-Kontor-Envelope-*` headers, so tests and people can read exactly what
was delivered.
"""
from __future__ import annotations

import argparse
import asyncio
import mailbox
import signal
from email import message_from_bytes, policy
from pathlib import Path

from aiosmtpd.controller import Controller

from kontor.logging import configure_logging, get_logger

log = get_logger(__name__)


def open_maildir(path: Path) -> mailbox.Maildir:
    """A Maildir at `path`, made complete even when the folder already exists
    (`mailbox.Maildir(create=True)` only builds new/cur/tmp in a folder it creates itself)."""
    for sub in ("tmp", "new", "cur"):
        (Path(path) / sub).mkdir(parents=True, exist_ok=True)
    return mailbox.Maildir(path, create=False)


class MaildirHandler:
    def __init__(self, maildir: Path) -> None:
        self.maildir = open_maildir(maildir)

    async def handle_DATA(self, server, session, envelope) -> str:
        # the message as it arrived, the envelope in headers before it (not parsed and written again:
        # that would fold its headers anew, and Python's folder changes encoded words)
        original = envelope.original_content or envelope.content
        trace = (f"X-Kontor-Envelope-From: {envelope.mail_from or ''}\r\n"
                 f"X-Kontor-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n").encode()
        key = self.maildir.add(trace + original)
        subject = message_from_bytes(original, policy=policy.default).get("Subject")
        log.info("mail stored", key=key, to=envelope.rcpt_tos, subject=subject)
        return "250 Message accepted for delivery"


def read_messages(maildir: Path):
    """Every stored message, oldest first, as `email.message.EmailMessage`."""
    box = open_maildir(maildir)
    items = []
    for key in box.iterkeys():
        delivered = box.get_message(key).get_date()  # the delivery time Maildir records
        items.append((delivered, key, message_from_bytes(box.get_bytes(key), policy=policy.default)))
    return [message for _, _, message in sorted(items, key=lambda item: item[:2])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--maildir", type=Path, required=True)
    args = parser.parse_args(argv)
    configure_logging("INFO", "json", service="smtp")
    controller = Controller(MaildirHandler(args.maildir), hostname=args.host, port=args.port)
    controller.start()
    log.info("smtp server listening", host=args.host, port=args.port, maildir=str(args.maildir))

    async def wait() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

    try:
        asyncio.run(wait())
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The mailer's SMTP connections against a real SMTP server (aiosmtpd): reused, one sender
at a time each, replaced after an error or when stale, closed when idle for long. Time is a
fake monotonic clock, so "idle for a minute" takes no minute."""
import asyncio

import pytest
from notification_samples import SmtpServer

from kontor.devinfra import local_dir
from kontor.testing import eventually, unique
from kontor_notifications.adapters.smtp import Mailer, SendFailed, SmtpPool, build_message
from kontor_notifications.settings import NotificationsSettings

pytestmark = pytest.mark.integration


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def message(n: int, to: str = "erika@acme.example"):
    return build_message(sender="Kontor eG <noreply@kontor.example>", reply_to=None, to=[to], cc=[],
                         subject=f"Nachricht {n}", text="Hallo", html="<p>Hallo</p>", message_id=f"<m{n}@kontor.test>",
                         language="de", attachments=[])


def mailer_for(smtp: SmtpServer, clock: Monotonic, size: int = 2, **settings) -> Mailer:
    s = NotificationsSettings(smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_pool_idle_s=30,
                              smtp_check_idle_after_s=5, **settings)
    mailer = Mailer(s)
    mailer.pool = SmtpPool(s, size=size, monotonic=clock)
    return mailer


async def test_connections_are_reused_one_sender_at_a_time_and_closed_when_idle():
    smtp = SmtpServer(local_dir("test-mail", unique("pool")), data_delay_s=0.05)
    smtp.start()
    clock = Monotonic()
    mailer = mailer_for(smtp, clock, size=2)
    try:
        for n in range(5):
            await mailer.send(message(n))
        assert (mailer.pool.opened, smtp.connections) == (1, 1), "one sender: one connection for five e-mails"

        await asyncio.gather(*(mailer.send(message(n)) for n in range(5, 11)))
        assert (mailer.pool.opened, smtp.connections) == (2, 2), "six e-mails at once over at most two connections"

        clock.now += 10  # idle, not yet for long: kept
        assert await mailer.close_idle() == 0
        clock.now += 30
        assert await mailer.close_idle() == 2
        await mailer.send(message(11))
        assert mailer.pool.opened == 3, "after the idle ones were closed, a new one"
        assert sorted(m["Message-ID"] for m in smtp.messages()) == sorted(f"<m{n}@kontor.test>" for n in range(12))
    finally:
        await mailer.close()
        smtp.stop()


async def test_an_error_or_a_stale_connection_is_replaced():
    smtp = SmtpServer(local_dir("test-mail", unique("pool")), refuse=frozenset({"nobody@acme.example"}))
    smtp.start()
    clock = Monotonic()
    mailer = mailer_for(smtp, clock, size=1)
    try:
        await mailer.send(message(1))
        with pytest.raises(SendFailed) as refused:
            await mailer.send(message(2, to="nobody@acme.example"))
        assert refused.value.permanent
        await mailer.send(message(3))
        assert mailer.pool.opened == 2, "the connection of the refusal was closed, a new one carried the next"

        smtp.stop()  # the server goes away and comes back: the pooled connection is dead
        smtp.start()
        clock.now += 6  # idle for longer than smtp_check_idle_after_s: checked with NOOP before reuse
        await mailer.send(message(4))
        assert mailer.pool.opened == 3
        await eventually(lambda: len(smtp.messages()) == 3, what="three e-mails stored")
    finally:
        await mailer.close()
        smtp.stop()


async def test_a_connection_carries_at_most_so_many_messages():
    smtp = SmtpServer(local_dir("test-mail", unique("pool")))
    smtp.start()
    mailer = mailer_for(smtp, Monotonic(), size=1, smtp_max_messages_per_connection=3)
    try:
        for n in range(7):
            await mailer.send(message(n))
        assert (mailer.pool.opened, smtp.connections) == (3, 3)
    finally:
        await mailer.close()
        smtp.stop()


async def test_a_long_subject_with_umlauts_and_dashes_arrives_letter_for_letter():
    """Python folds long headers into encoded words and lost the space between two of them:
    "Relaunch 2027 – Kündigung" arrived as "Relaunch 2027– Kündigung"."""
    smtp = SmtpServer(local_dir("test-mail", unique("subject")))
    smtp.start()
    mailer = mailer_for(smtp, Monotonic())
    subjects = ["Auftrag verlängert sich automatisch: Relaunch 2027 – Kündigung bis 28.02.2027",
                "Stornorechnung 2027-000002 zu Rechnung 2027-000001 – Überarbeitung der Website für die Bäckerei "
                "Müller & Söhne GmbH – Leistungszeitraum Januar bis März",
                "Order renews automatically: Relaunch 2027 – cancel by 28 February 2027"]
    try:
        for n, subject in enumerate(subjects):
            m = message(n)
            m.replace_header("Subject", subject)
            await mailer.send(m)
        assert sorted(m["Subject"] for m in smtp.messages()) == sorted(subjects)
    finally:
        await mailer.close()
        smtp.stop()

"""An automatically renewing order across orders and notifications, over real Kafka, PostgreSQL, HTTP and SMTP
(issue 22): the order run for a day before the notice deadline e-mails the member a reminder (once), the run after
the deadline plans the next term's invoices."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
from notification_samples import SmtpServer
from orders_support import ADVISOR, MEMBER, MONTHLY, NOW, active, known_client

from kontor.clock import FixedClock
from kontor.devinfra import local_dir
from kontor.testing import eventually, unique
from kontor.testing.services import ok, running_service
from kontor_notifications.spec import SPEC as NOTIFICATIONS
from kontor_orders.spec import SPEC as ORDERS

pytestmark = pytest.mark.integration


async def test_a_renewing_order_reminds_the_member_by_e_mail_and_plans_the_next_term(infra, topic_prefix):
    smtp = SmtpServer(local_dir("test-mail", unique("renewal")))
    smtp.start()
    run = uuid.uuid4().hex[:8]
    member_email = f"anna.{run}@member.example"
    clock = FixedClock(NOW)
    try:
        async with running_service(ORDERS, infra, topic_prefix=topic_prefix, clock=clock, order_runs_enabled=False,
                                   renewal_reminder_days=14) as orders, \
                running_service(NOTIFICATIONS, infra, topic_prefix=topic_prefix, smtp_host="127.0.0.1",
                                smtp_port=smtp.port, delivery_interval_s=0.1, retry_base_s=0.2) as notifications:
            await ok(notifications.http.put("/members/member-1", headers=MEMBER,
                                            json={"email": member_email, "language": "de"}))
            client_id = await known_client(infra, topic_prefix, name=f"ACME {run} GmbH")
            oid = (await active(orders, client_id, **MONTHLY, project_name=f"Wartung {run}",
                                description="Website care"))["order_id"]
            await ok(orders.http.post(f"/orders/{oid}/contract", headers=MEMBER,
                                      json={"action": "auto_renew", "term_months": 3, "notice_months": 1}))

            async def order_run(day: str) -> None:
                clock.advance(dt.datetime.combine(dt.date.fromisoformat(day), NOW.timetz()) - clock.now())
                await ok(orders.http.post("/order-runs", json={"as_of": day}, headers=ADVISOR))

            await order_run("2027-02-14")  # 14 days before the deadline of 28 Feb
            await order_run("2027-02-20")

            async def reminded():
                return [m for m in smtp.messages()
                        if m["To"] == member_email and "verlängert" in str(m["Subject"])] or None
            [mail] = await eventually(reminded, timeout_s=30, what="the reminder e-mail at the member")
            text = mail.get_body(("plain",)).get_content()
            assert "28.02.2027" in str(mail["Subject"]) and f"Wartung {run}" in str(mail["Subject"])
            assert "31.03.2027" in text and "30.06.2027" in text

            await order_run("2027-03-01")  # the deadline has passed: the next term is planned
            order = await ok(orders.http.get(f"/orders/{oid}", headers=MEMBER))
            assert order["service_end"] == "2027-06-30"
            assert [s["invoice_date"] for s in order["schedule"]][-3:] == ["2027-04-01", "2027-05-01", "2027-06-01"]
            # the delivery log holds one reminder: the second run did not send another
            log = await ok(notifications.http.get("/emails", params={"order_id": oid}, headers=MEMBER))
            assert [e["template"] for e in log].count("order_renewal_notice_due") == 1
    finally:
        smtp.stop()

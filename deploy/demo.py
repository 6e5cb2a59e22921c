"""`make demo`: the whole order-to-invoice journey, live, against the platform `make up` runs.

It makes the calls a member, an advisor and a client would make (with tokens of the
development secret `make up` uses) (the same steps as
tests/test_journey.py), reads the e-mails the SMTP server of `make up` kept in .local/mail,
prints what happened at each step, and saves the invoices' PDFs and X-Rechnungen it received
under .local/demo/<run>/.

The journey plays 2027 through: billing runs as of its dates and a payment received then.
`make up` allows that (KONTOR_INVOICING_ALLOW_FUTURE_AS_OF=true, deploy/stack.py); a real
deployment refuses runs and payments dated after today.
"""
from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_journey import Platform, attachments, journey, official_validator  # noqa: E402

from kontor.devinfra.smtp import read_messages  # noqa: E402

URLS = {"orders": "http://127.0.0.1:8101", "clients": "http://127.0.0.1:8102", "invoicing": "http://127.0.0.1:8103",
        "notifications": "http://127.0.0.1:8104"}


def say(line: str) -> None:
    print(f"\033[1m[demo]\033[0m {line}", flush=True)


async def main() -> int:
    clients = {name: httpx.AsyncClient(base_url=url, timeout=60) for name, url in URLS.items()}
    try:
        for name, client in clients.items():
            try:
                ready = await client.get("/readyz")
            except httpx.HTTPError:
                ready = None
            if ready is None or ready.status_code != 200:
                say(f"{name} is not ready at {URLS[name]}: start the platform with `make up` (in another terminal)")
                return 1
        run = uuid.uuid4().hex[:8]
        maildir = ROOT / ".local" / "mail"
        say(f"run {run}: every service ready; e-mails are read from {maildir}")
        validator = official_validator()
        if validator is None:
            say("../shared/xrechnung not found: the X-Rechnungen are not checked by the official rules here")
        outcome = await journey(Platform(clients["clients"], clients["orders"], clients["invoicing"],
                                         clients["notifications"], maildir, say, validator), run)
        out = ROOT / ".local" / "demo" / run
        out.mkdir(parents=True, exist_ok=True)
        saved = 0
        for message in read_messages(maildir):
            if f"rechnung.{run}@" in message.get("X-Kontor-Envelope-To", ""):
                for name, content in attachments(message).items():
                    (out / name).write_bytes(content)
                    saved += 1
        say(f"done: invoices {', '.join(outcome['invoices'])}, cancellation {outcome['cancellation']}, "
            f"{outcome['emails']} e-mails delivered")
        say(f"{saved} documents from the e-mails saved in {out}; the stored originals are at "
            f"{URLS['invoicing']}/invoices/<id>/pdf and /xrechnung.xml, the delivery log at "
            f"{URLS['notifications']}/emails (token: kontor-token --sub advisor-1 --role advisor)")
        return 0
    finally:
        for client in clients.values():
            await client.aclose()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

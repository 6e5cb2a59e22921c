"""SMTP catcher: every message accepted on 1025 is kept in a Maildir; 8025 serves them over HTTP
in the shape of Mailpit's API (GET /api/v1/messages, GET /api/v1/message/<ID>/raw, /readyz)."""
import json
import mailbox
import os
import signal
import threading
from email import message_from_bytes, policy
from email.utils import getaddresses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

MAILDIR = os.environ.get("CATCHER_MAILDIR", "/var/mail/catcher")
for sub in ("tmp", "new", "cur"):
    os.makedirs(os.path.join(MAILDIR, sub), exist_ok=True)
BOX = mailbox.Maildir(MAILDIR, create=False)
LOCK = threading.Lock()


class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.SMTP)
        msg["X-Kontor-Envelope-From"] = envelope.mail_from or ""
        msg["X-Kontor-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        with LOCK:
            key = BOX.add(msg.as_bytes())
        print(json.dumps({"event": "mail stored", "key": key, "to": envelope.rcpt_tos}), flush=True)
        return "250 Message accepted for delivery"


def summaries():
    with LOCK:
        keys = list(BOX.iterkeys())
        items = []
        for key in keys:
            stored = BOX.get_message(key)
            msg = message_from_bytes(BOX.get_bytes(key), policy=policy.default)
            items.append((stored.get_date(), key, msg))
    items.sort(key=lambda item: item[:2], reverse=True)  # newest first, as Mailpit lists them
    return [{"ID": key, "Created": created, "Subject": str(msg.get("Subject", "")),
             "From": {"Address": str(msg.get("X-Kontor-Envelope-From", ""))},
             "To": [{"Address": a} for _, a in getaddresses([str(msg.get("X-Kontor-Envelope-To", ""))]) if a]}
            for created, key, msg in items]


class Web(BaseHTTPRequestHandler):
    def _send(self, status, body, kind="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path in ("/readyz", "/livez"):
            return self._send(200, b"ok", "text/plain")
        if path == "/api/v1/messages":
            listed = summaries()
            return self._send(200, json.dumps({"total": len(listed), "messages": listed}).encode())
        parts = path.strip("/").split("/")
        if len(parts) == 5 and parts[:3] == ["api", "v1", "message"] and parts[4] == "raw":
            with LOCK:
                try:
                    raw = BOX.get_bytes(parts[3])
                except KeyError:
                    raw = None
            if raw is not None:
                return self._send(200, raw, "message/rfc822")
        return self._send(404, b'{"error": "not found"}')

    def log_message(self, format, *args):  # the requests are not worth a log line each
        pass


def main():
    # inside its container: the services' containers and the published ports reach it on every interface
    smtp = Controller(Handler(), hostname="0.0.0.0", port=1025)  # noqa: S104
    smtp.start()
    web = ThreadingHTTPServer(("0.0.0.0", 8025), Web)  # noqa: S104
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=web.shutdown).start())
    print(json.dumps({"event": "listening", "smtp": 1025, "http": 8025, "maildir": MAILDIR}), flush=True)
    try:
        web.serve_forever()
    finally:
        smtp.stop()


if __name__ == "__main__":
    main()

"""The portal's calls to the services over real sockets: a pooled connection the service closes while the
portal sends on it, and a service that cannot be reached at all."""
from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from portal_support import dev_sign_in, portal_client

from kontor.testing import free_port
from kontor_portal.adapters.apis import Api, ApiUnavailable
from kontor_portal.settings import PortalSettings


class ClosingServer:
    """An HTTP/1.1 server on a real port that answers each request with its method and path, keeps the
    connection open, and on the first connection closes it without an answer when the second request comes:
    what a service does that closes an idle connection just as the client sends on it."""

    def __init__(self) -> None:
        self.received: list[str] = []  # "METHOD /path", also the requests it dropped
        self.connections = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        closes_on_second = self.connections == 1
        answered = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                headers = dict(line.split(": ", 1) for line in header_lines if ": " in line)
                length = int(headers.get("Content-Length") or headers.get("content-length") or 0)
                if length:
                    await reader.readexactly(length)
                method, path, _ = request_line.split(" ")
                self.received.append(f"{method} {path}")
                if closes_on_second and answered == 1:
                    return  # closed without an answer
                body = json.dumps({"method": method, "path": path}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
                answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            return  # the client closed the connection
        finally:
            writer.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        port = free_port()
        server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.close()
            await server.wait_closed()


@contextlib.asynccontextmanager
async def api_at(base_url: str) -> AsyncIterator[Api]:
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as http:
        yield Api("orders", http)


async def test_a_read_on_a_connection_the_service_closed_is_sent_again_on_a_new_one():
    server = ClosingServer()
    async with server.running() as url, api_at(url) as api:
        assert await api.get_json("/orders/1", "token") == {"method": "GET", "path": "/orders/1"}
        # the pooled connection is reused, and the server drops it on this request
        assert await api.get_json("/orders/2", "token") == {"method": "GET", "path": "/orders/2"}
    assert server.received == ["GET /orders/1", "GET /orders/2", "GET /orders/2"]
    assert server.connections == 2


async def test_a_change_on_a_connection_the_service_closed_is_not_repeated():
    server = ClosingServer()
    async with server.running() as url, api_at(url) as api:
        await api.get_json("/orders/1", "token")
        with pytest.raises(ApiUnavailable) as caught:
            await api.change("POST", "/orders/1/submit", "token", json={})
    assert caught.value.service == "orders"
    # the service may have acted on it before the connection broke: sending it again could act twice
    assert server.received == ["GET /orders/1", "POST /orders/1/submit"]


async def test_a_service_that_cannot_be_reached_gives_a_page_that_says_so_not_a_server_error():
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = PortalSettings(environment="development", clients_url=closed, orders_url=closed,
                              invoicing_url=closed, notifications_url=closed)
    async with portal_client(settings, cookies={"kontor_lang": "en"}) as browser:
        assert (await dev_sign_in(browser, "member-1", "member")).status_code == 303
        page = await browser.get("/dashboard")
    assert page.status_code == 503, page.text
    assert page.headers["retry-after"] == "5"
    assert "<main" in page.text and "A service cannot be reached just now" in page.text

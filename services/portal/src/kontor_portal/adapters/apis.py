"""HTTP clients of the four APIs. Every call carries the signed-in user's token, so the
services decide what the user may see; the portal adds no rights of its own."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from kontor.auth import ACTING_ROLE_HEADER
from kontor.logging import get_logger
from kontor.service import CLIENT_LIMITS

log = get_logger(__name__)


class ApiNotFound(Exception):
    """The API answered 404 (also what a member gets for another member's order)."""


class ApiUnauthorized(Exception):
    """The API refused the token (expired or revoked): the user signs in again."""


class ApiUnavailable(Exception):
    """The API could not be reached, or dropped the connection without an answer."""

    def __init__(self, service: str, error: httpx.TransportError) -> None:
        super().__init__(f"{service} cannot be reached: {error!r}")
        self.service, self.error = service, error


class ApiError(Exception):
    def __init__(self, service: str, status_code: int, detail: str, body: bytes = b"") -> None:
        super().__init__(f"{service} answered {status_code}: {detail}")
        self.service, self.status_code, self.detail, self.body = service, status_code, detail, body


def _headers(token: str) -> dict[str, str]:
    """The user's token, and the role they work in (a `UserToken`'s) for the services to narrow it to."""
    headers = {"Authorization": f"Bearer {token}"}
    role = getattr(token, "role", None)
    if role:
        headers[ACTING_ROLE_HEADER] = role
    return headers


# What a request on a connection the service is just closing (or to a replica that has just stopped) fails
# with before the service answered. A timeout is not among them: waiting twice as long helps nobody.
_STALE_CONNECTION = (httpx.ConnectError, httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)
_SAFE_TO_REPEAT = frozenset({"GET", "HEAD"})


@dataclass
class Api:
    """One service's API, called on behalf of one user."""

    name: str
    http: httpx.AsyncClient

    async def _send(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        r = await self._request(method, path, token, **kwargs)
        if r.status_code == 404:
            raise ApiNotFound(f"{self.name}: {path}")
        if r.status_code == 401:
            raise ApiUnauthorized(self.name)
        if r.status_code >= 400:
            log.warning("api call refused", service=self.name, path=path, status=r.status_code, body=r.text[:500])
            raise ApiError(self.name, r.status_code, r.text[:500], body=r.content)
        return r

    async def _request(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        """One request; a read is sent once more, on a new connection, when its connection failed before
        the answer. A change is never repeated: the service may have made it before the connection broke."""
        try:
            return await self.http.request(method, path, headers=_headers(token), **kwargs)
        except _STALE_CONNECTION as exc:
            if method not in _SAFE_TO_REPEAT:
                raise ApiUnavailable(self.name, exc) from exc
            log.info("api connection failed before the answer; sending the read again", service=self.name,
                     path=path, error=repr(exc)[:300])
            first = exc
        except httpx.TransportError as exc:
            raise ApiUnavailable(self.name, exc) from exc
        try:
            return await self.http.request(method, path, headers=_headers(token), **kwargs)
        except httpx.TransportError as exc:
            raise ApiUnavailable(self.name, exc) from first

    async def get_json(self, path: str, token: str, **params: Any) -> Any:
        return (await self._send("GET", path, token, params=params or None)).json()

    async def get_raw(self, path: str, token: str, **params: Any) -> httpx.Response:
        return await self._send("GET", path, token, params=params or None)

    async def change(self, method: str, path: str, token: str, *, json: Any = None,
                     files: Any = None) -> httpx.Response:
        """A POST/PUT/PATCH/DELETE whose refusal the page shows: a 409 (its reason) or a 422 (the fields)
        comes back as the response; 404, 401 and other errors raise as in `get_json`."""
        try:
            return await self._send(method, path, token, json=json, files=files)
        except ApiError as exc:
            if exc.status_code in (409, 422):
                return httpx.Response(exc.status_code, content=exc.body, headers={"content-type": "application/json"})
            raise


@dataclass
class Apis:
    clients: Api
    orders: Api
    invoicing: Api
    notifications: Api

    @classmethod
    def create(cls, urls: dict[str, str], timeout_s: float,
               transport: httpx.AsyncBaseTransport | None = None) -> Apis:
        def api(name: str) -> Api:
            return Api(name, httpx.AsyncClient(base_url=urls[name], timeout=timeout_s, transport=transport,
                                               limits=CLIENT_LIMITS))
        return cls(api("clients"), api("orders"), api("invoicing"), api("notifications"))

    async def aclose(self) -> None:
        for api in (self.clients, self.orders, self.invoicing, self.notifications):
            await api.http.aclose()

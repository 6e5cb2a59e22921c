"""The member's pages: dashboard, orders by status, order and invoice detail, the documents."""
from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal

import httpx
from fastapi import FastAPI, Request, Response

from kontor_portal.adapters.apis import ApiNotFound
from kontor_portal.entrypoints import order_pages
from kontor_portal.entrypoints.web import Web, as_uuid

ORDER_STATUSES = ("draft", "smart_review", "client_confirmation", "active", "cancellation_requested", "completed",
                  "cancelled", "rejected")
INVOICE_STATUSES = ("draft", "waiting_for_adjustment", "issuing", "invoiced", "disputed", "paid", "cancelled",
                    "cancellation", "discarded")
LATEST = 5
SORTS = ("-created_at", "created_at", "net_value", "-net_value", "plan_value", "-plan_value", "order_value",
         "-order_value")
SUM_HEADERS = {"net_value": "Kontor-Sum-Net-Value", "plan_value": "Kontor-Sum-Plan-Value",
               "order_value": "Kontor-Sum-Order-Value"}


def _counts(items: list[dict], known: tuple[str, ...]) -> list[tuple[str, int]]:
    """(status, count) in the order of `known`, statuses the portal does not know yet at the end."""
    counts = Counter(i["status"] for i in items)
    return [(s, counts[s]) for s in known if counts[s]] + [(s, n) for s, n in counts.items() if s not in known]


def _sums(headers: httpx.Headers) -> dict[str, dict[str, Decimal]]:
    """The orders API's sums of the listed orders (`Kontor-Sum-*`: "EUR 1234.00, USD 5.00") per currency."""
    sums: dict[str, dict[str, Decimal]] = {}
    for name, header in SUM_HEADERS.items():
        for part in filter(None, (p.strip() for p in headers.get(header, "").split(","))):
            currency, _, amount = part.partition(" ")
            sums.setdefault(currency, dict.fromkeys(SUM_HEADERS, Decimal(0)))[name] = Decimal(amount)
    return dict(sorted(sums.items()))


def register(app: FastAPI, web: Web) -> None:
    apis = web.apis

    @app.get("/dashboard")
    async def dashboard(request: Request) -> Response:
        token = web.token_of(request)
        orders, invoices = await asyncio.gather(apis.orders.get_json("/orders", token, limit=200),
                                                apis.invoicing.get_json("/invoices", token, limit=500))
        return web.page(request, "dashboard.html",
                        order_counts=_counts(orders, ORDER_STATUSES),
                        invoice_counts=_counts(invoices, INVOICE_STATUSES),
                        orders=sorted(orders, key=lambda o: o["created_at"], reverse=True)[:LATEST],
                        invoices=sorted(invoices,
                                        key=lambda i: str(i.get("invoice_date") or i.get("issue_date") or ""),
                                        reverse=True)[:LATEST],
                        orders_total=len(orders), invoices_total=len(invoices))

    @app.get("/orders")
    async def orders_list(request: Request, status: str | None = None, sort: str = "-created_at") -> Response:
        """The orders (by status), sorted by the API (newest first, or by one of the three values), with the
        values summed per currency over the listed orders."""
        token = web.token_of(request)
        chosen = status if status in ORDER_STATUSES else None
        sort = sort if sort in SORTS else "-created_at"
        r = await apis.orders.get_raw("/orders", token, limit=200, sort=sort,
                                      **({"status": chosen} if chosen else {}))
        return web.page(request, "orders.html", statuses=ORDER_STATUSES, chosen=chosen, orders=r.json(), sort=sort,
                        sort_links=True, sums=_sums(r.headers))

    @app.get("/orders/{order_id}")
    async def order_detail(request: Request, order_id: str) -> Response:
        token = web.token_of(request)
        oid = as_uuid(order_id)
        order, history, comments = await asyncio.gather(apis.orders.get_json(f"/orders/{oid}", token),
                                                        apis.orders.get_json(f"/orders/{oid}/history", token),
                                                        apis.orders.get_json(f"/orders/{oid}/comments", token))
        return web.page(request, "order.html", order=order, history=history, comments=comments,
                        refused=request.query_params.get("refused"), order_actions=order_pages.ACTIONS,
                        refused_at=request.query_params.get("at"), done=request.query_params.get("done"))

    @app.get("/invoices/{invoice_id}")
    async def invoice_detail(request: Request, invoice_id: str) -> Response:
        token = web.token_of(request)
        invoice = await apis.invoicing.get_json(f"/invoices/{as_uuid(invoice_id)}", token)
        return web.page(request, "invoice.html", invoice=invoice, request_refused=request.query_params.get("refused"),
                        request_done=request.query_params.get("done"))

    @app.get("/invoices/{invoice_id}/{document}")
    async def invoice_document(request: Request, invoice_id: str, document: str) -> Response:
        """The PDF or the X-Rechnung, fetched with the user's token and passed on."""
        token = web.token_of(request)
        if document not in ("pdf", "xrechnung.xml"):
            raise ApiNotFound(document)
        upstream = await apis.invoicing.get_raw(f"/invoices/{as_uuid(invoice_id)}/{document}", token)
        passed = {k: v for k, v in upstream.headers.items() if k.lower() in ("content-disposition", "etag")}
        return Response(upstream.content, media_type=upstream.headers.get("content-type"), headers=passed)

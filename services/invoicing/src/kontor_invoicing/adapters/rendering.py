"""The CPU-heavy work of issuing, done in separate rendering processes, never on the event loop
of a process that consumes events or serves requests.

Two jobs: `check` builds an invoice's X-Rechnung and checks it by the official rules (before it
takes a number), `render` makes its PDF and X-Rechnung (after). Each rendering process builds
its renderer (fonts, letterhead, caches) and compiles the rules once, at start. Invoices travel
as the JSON the repository stores, so what a process renders is exactly what is stored:
rendering is deterministic from the stored invoice, and any worker gets the same bytes.

A rendering process that dies (killed, out of memory) breaks the pool; the next job finds a
new pool, the job that was running fails once (`RenderingFailed`) and is retried by the caller.

Metrics are recorded here, in the worker, from what each job reports (`kontor.metrics`: render and
validate seconds, documents rendered, failed jobs): a rendering process has no /metrics of its own.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import TypeAdapter

from kontor import metrics
from kontor.logging import get_logger
from kontor_invoicing.adapters import weasyprint_speedups
from kontor_invoicing.adapters.documents import DefaultRenderer, Rendered, xrechnung
from kontor_invoicing.domain.model import Invoice
from kontor_invoicing.settings import Seller

log = get_logger(__name__)
_INVOICE = TypeAdapter(Invoice)
T = TypeVar("T")


class RenderingFailed(Exception):
    """A rendering process failed on a job (it died, or the job raised)."""


@dataclass(frozen=True)
class Timed(Generic[T]):
    """A job's result and the seconds it took inside the rendering process."""

    value: T
    seconds: float


# -- inside a rendering process --------------------------------------------------------------

_renderer: DefaultRenderer | None = None
_validator = None
_seller: Seller | None = None


def _start(seller_json: str, rules_dir: str | None) -> None:
    global _renderer, _validator, _seller
    from kontor_invoicing.adapters.xrechnung_rules import XRechnungValidator

    _seller = Seller.model_validate_json(seller_json)
    _renderer = DefaultRenderer(_seller)
    _validator = XRechnungValidator(Path(rules_dir)) if rules_dir else None
    if _validator is not None:
        _validator._compile()


def _check(invoice_json: bytes) -> Timed[tuple[str, ...]]:
    started = time.perf_counter()
    if _validator is None:
        return Timed((), time.perf_counter() - started)
    if _seller is None:
        raise RuntimeError("the rendering process was not started (_start)")
    report = _validator.validate(xrechnung(_INVOICE.validate_json(invoice_json), _seller))
    return Timed(tuple(str(e) for e in report.errors), time.perf_counter() - started)


def _render(invoice_json: bytes) -> Timed[list[Rendered]]:
    started = time.perf_counter()
    if _renderer is None:
        raise RuntimeError("the rendering process was not started (_start)")
    documents = _renderer.render(_INVOICE.validate_json(invoice_json))
    return Timed(documents, time.perf_counter() - started)


def _warm() -> int:
    """Render nothing, but make sure the process is up (its initializer ran)."""
    return os.getpid()


# -- in the worker ---------------------------------------------------------------------------

class RenderPool:
    """`processes` rendering processes shared by a worker's issuing pipeline."""

    def __init__(self, seller: Seller, rules_dir: Path | None, *, processes: int = 1) -> None:
        self.seller_json = seller.model_dump_json()
        self.rules_dir = str(rules_dir) if rules_dir else None
        self.processes = max(1, processes)
        self.validates = rules_dir is not None
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: a fork of a process running an event loop, threads and open sockets is unsafe
            self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start, initargs=(self.seller_json, self.rules_dir))
        return self._pool

    async def start(self) -> None:
        """Start the processes now (a second or two each), not on the first invoice."""
        metrics.PDF_SPEEDUPS_ACTIVE.set(1 if weasyprint_speedups.log_status(log)["active"] else 0)
        loop = asyncio.get_running_loop()
        pool = self._executor()
        try:
            pids = await asyncio.gather(*(loop.run_in_executor(pool, _warm) for _ in range(self.processes)))
        except BrokenProcessPool:  # a process died starting: the next start makes new ones
            self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        log.info("rendering processes started", processes=self.processes, pids=sorted(set(pids)),
                 validates=self.validates)

    async def _run(self, job: Callable[[bytes], Timed[T]], invoice: Invoice) -> Timed[T]:
        loop = asyncio.get_running_loop()
        pool = self._executor()
        try:
            return await loop.run_in_executor(pool, job, _INVOICE.dump_json(invoice))
        except BrokenProcessPool as e:
            if self._pool is pool:  # the first to notice replaces it
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
                log.error("a rendering process died; starting new ones", invoice_id=str(invoice.id))
            raise RenderingFailed(f"rendering process died: {e}") from e
        except Exception as e:  # the job itself raised inside the rendering process
            raise RenderingFailed(f"{type(e).__name__}: {e}") from e

    async def check(self, invoice: Invoice) -> tuple[tuple[str, ...], float]:
        """The official rules' errors for this invoice's X-Rechnung (none: valid), and the seconds taken."""
        try:
            timed = await self._run(_check, invoice)
        except RenderingFailed:
            metrics.RENDERING_FAILURES.labels("check").inc()
            raise
        metrics.VALIDATE_SECONDS.observe(timed.seconds)
        return timed.value, timed.seconds

    async def render(self, invoice: Invoice) -> tuple[list[Rendered], float]:
        try:
            timed = await self._run(_render, invoice)
        except RenderingFailed:
            metrics.RENDERING_FAILURES.labels("render").inc()
            raise
        metrics.RENDER_SECONDS.observe(timed.seconds)
        for document in timed.value:
            metrics.DOCUMENTS_RENDERED.labels(document.kind).inc()
        return timed.value, timed.seconds

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

"""Issuing invoices in three steps, so that invoicing scales with worker processes while the
numbers stay gapless.

1. **Prepare and check**, outside any lock: a batch of invoices queued for issuing is claimed
   for a while (a lease), prepared (buyer data, what a final invoice deducts) and its
   X-Rechnung checked against the official rules in a rendering process. An invoice that fails
   waits for an advisor and takes no number.
2. **Number**, in a short transaction: the batch's numbers are taken from the year's counter at
   once; number, status and invoice data commit together.
3. **Render and store**: each numbered invoice is locked (SKIP LOCKED), its PDF and X-Rechnung
   rendered in a rendering process, stored with their SHA-256, and only then is `invoice.issued`
   (or, for a cancellation invoice, `invoice.cancelled`) written to the outbox, in the same
   transaction. An invoice whose worker died after numbering is picked up by any worker once
   its claim runs out; rendering is deterministic from the stored invoice, so its documents are
   the same bytes, and its event is written exactly once.

Every worker runs one `IssuingPipeline`: one task prepares and numbers, a few render (one more
than there are rendering processes, so a process never waits for the database).
"""
from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kontor import faults, metrics
from kontor.contracts.common import Actor
from kontor.contracts.invoices import InvoiceCancelledV1, InvoiceChangeRequestedV1, InvoiceIssuedV1
from kontor.errors import InvalidInput
from kontor.logging import get_logger
from kontor_invoicing.adapters import repository
from kontor_invoicing.adapters.rendering import RenderingFailed, RenderPool
from kontor_invoicing.domain import model
from kontor_invoicing.service_layer.services import SYSTEM, Deps, _common, _save, published

log = get_logger(__name__)


@dataclass
class StepTimes:
    """Seconds spent per step of issuing, summed over this worker's invoices (for the profile)."""

    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, step: str, seconds: float, count: int = 1) -> None:
        self.counts[step] += count
        self.seconds[step] += seconds

    def per_invoice_ms(self) -> dict[str, float]:
        return {k: round(1000 * self.seconds[k] / self.counts[k], 2) for k in self.seconds if self.counts[k]}


def _actor(inv: model.Invoice) -> Actor:
    return Actor(**inv.issued_by) if inv.issued_by else SYSTEM


def _retry_in_s(attempts: int) -> float:
    return float(min(2 ** attempts, 300))


class IssuingPipeline:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession], deps: Deps, pool: RenderPool, *,
                 worker: str) -> None:
        self.sessions = session_factory
        self.deps = deps
        self.pool = pool
        self.worker = worker
        self.times = StepTimes()
        self.issued = 0
        s = deps.settings
        self.lease_s = s.issue_lease_s
        self.batch = s.issue_batch_size
        self.poll_s = s.issuing_poll_interval_s

    # -- 1 and 2: prepare, check, number ----------------------------------------------------

    async def _prepare(self, claimed: list[model.Invoice]) -> tuple[list[model.Invoice], list[model.Invoice]]:
        """The invoices prepared, and those that must wait (a final invoice whose installments are
        still being issued: what it deducts is not known yet)."""
        started = time.perf_counter()
        prepared, waiting = [], []
        clients: dict[uuid.UUID, dict | None] = {}
        async with self.sessions() as session:
            for inv in claimed:
                order_invoices = await repository.of_order(session, inv.order_id) \
                    if inv.schedule_kind == "final" else []
                if model.waits_for_installments(inv, order_invoices):
                    waiting.append(inv)
                    continue
                if inv.client_id not in clients:
                    clients[inv.client_id] = await repository.known_client(session, inv.client_id)
                prepared.append(model.prepare(inv, buyer=clients[inv.client_id], order_invoices=order_invoices))
        self.times.add("prepare", time.perf_counter() - started, len(claimed))
        return prepared, waiting

    async def prepare_and_number(self) -> list[uuid.UUID]:
        """One batch through steps 1 and 2; the ids numbered (to render), [] when none was queued."""
        async with self.sessions.begin() as session:
            claimed = await repository.claim_to_prepare(session, lease_s=self.lease_s, limit=self.batch)
        if not claimed:
            return []
        prepared, waiting = await self._prepare(claimed)
        if waiting:  # a final invoice waits until the installments queued before it are issued
            async with self.sessions.begin() as session:
                await repository.set_claim(session, [w.id for w in waiting], for_s=2)
        if not prepared:
            return []
        checks = await asyncio.gather(*(self._check(p) for p in prepared), return_exceptions=True)
        for result in checks:
            if not isinstance(result, BaseException):
                self.times.add("validate", result[1])
        started = time.perf_counter()
        async with self.sessions.begin() as session:
            numbered, failed = await self._number(session, prepared, checks)
        self.times.add("number", time.perf_counter() - started, max(1, len(numbered)))
        for inv, error in failed:
            await self._failed(inv, error)
        return numbered

    async def _check(self, prepared: model.Invoice) -> tuple[tuple[str, ...], float]:
        """The X-Rechnung rules' errors of the invoice as it will be issued, and the seconds it took.
        One the domain refuses to issue (its due date would not exist) fails as a check fails: it
        waits for an advisor instead of stopping the batch."""
        try:
            candidate = model.provisional(prepared)
        except InvalidInput as refused:
            return tuple(f"{f}: {m}" for f, m in refused.errors), 0.0
        if not self.pool.validates:  # no rules configured: nothing to check, no trip to a rendering process
            return (), 0.0
        return await self.pool.check(candidate)

    async def _number(self, session: AsyncSession, prepared: list[model.Invoice], checks: list):
        now = self.deps.clock.now()
        current = await repository.lock(session, [p.id for p in prepared])
        valid: dict[int, list[model.Invoice]] = defaultdict(list)
        held: list[uuid.UUID] = []
        failed: list[tuple[model.Invoice, str]] = []
        for p, result in zip(prepared, checks, strict=True):
            stored = current.get(p.id)
            if stored is None or stored.version != p.version or stored.status != "issuing" or stored.number:
                continue  # changed since it was claimed (its lease ran out and another worker took it)
            if isinstance(result, BaseException):
                failed.append((p, f"checking the X-Rechnung failed: {result}"))
                continue
            errors, _ = result
            if errors:
                after = model.hold_for_adjustment(p, errors)
                await _save(session, p, after)
                await self.deps.outbox.add(session, InvoiceChangeRequestedV1(
                    **_common(after, SYSTEM, now), validation_errors=errors,
                    message="the X-Rechnung failed the official rules; an advisor must adjust it"), time=now)
                await repository.count_progress(session, p.run_id, self.worker, held=1)
                log.warning("invoice held: X-Rechnung invalid", invoice_id=str(p.id), errors=list(errors))
                held.append(after.id)
            else:
                valid[(p.issue_on or p.invoice_date).year].append(p)
        numbered: list[uuid.UUID] = []
        # claimed to render by this worker for a while; after that any worker may take them
        to_render = repository.claim_columns(for_s=self.lease_s, step_done=True)
        for year, batch in sorted(valid.items()):
            first = await repository.take_numbers(session, year, len(batch))
            for offset, p in enumerate(batch):
                await _save(session, p, model.number(p, sequence=first + offset), claim=to_render)
                numbered.append(p.id)
        await repository.set_claim(session, held, for_s=None)
        return numbered, failed

    # -- 3: render, store, publish -----------------------------------------------------------

    async def render_one(self, invoice_id: uuid.UUID | None = None) -> bool:
        """Render and store one numbered invoice: this one, or any whose claim has run out.
        False when there was none to take. A failure of this invoice's own (its rendering, or
        storing it) is counted on it and retried with backoff; an infrastructure fault is raised."""
        inv: model.Invoice | None = None
        failure: str | None = None
        started = time.perf_counter()
        try:
            async with self.sessions.begin() as session:
                inv = await repository.claim_to_render(session, invoice_id=invoice_id)
                if inv is None:
                    return False
                try:
                    documents, seconds = await self.pool.render(inv)
                    self.times.add("render", seconds)
                except RenderingFailed as e:
                    failure = f"rendering failed: {e}"
                else:
                    started = time.perf_counter()
                    await self._store(session, inv, documents)
        except Exception as e:
            if inv is None or faults.is_infrastructure_fault(e):
                raise
            log.exception("storing an issued invoice failed", invoice_id=str(inv.id), number=inv.number)
            failure = f"storing failed: {type(e).__name__}: {e}"
        if failure is not None:
            await self._failed(inv, failure)
            return True
        self.times.add("store_publish", time.perf_counter() - started)
        self.issued += 1
        year = inv.issue_date.year if inv.issue_date else (inv.issue_on or inv.invoice_date).year
        metrics.INVOICES_ISSUED.labels(str(year), inv.kind).inc()
        if self.issued % 500 == 0:
            log.info("issuing progress", worker=self.worker, issued=self.issued, ms=self.times.per_invoice_ms())
        return True

    async def _store(self, session: AsyncSession, inv: model.Invoice, documents) -> None:
        now = self.deps.clock.now()
        await repository.add_documents(session, inv.id, documents, now=now)
        # the draft's files as they were when it was queued (they are changed only before that)
        added = model.attachment_documents([r._mapping for r in await repository.attachments_of(session, inv.id)])
        issued = model.documents_stored(inv, tuple(model.Document(d.kind, d.filename, d.media_type, d.sha256)
                                                   for d in documents) + added)
        await _save(session, inv, issued, claim=repository.claim_columns(for_s=None, step_done=True))
        base = self.deps.settings.public_base_url
        if issued.kind == "cancellation":
            if issued.cancels_invoice_id is None:
                raise TypeError(f"cancellation invoice {issued.id} names no invoice it cancels")
            current = await repository.get(session, issued.cancels_invoice_id, for_update=True)
            original = model.cancel(current, issued)
            await _save(session, current, original)
            await self.deps.outbox.add(session, InvoiceCancelledV1(
                **_common(original, _actor(issued), now), number=original.number, currency=original.currency,
                reason=issued.cancellation_reason or "", cancellation=published(issued, base),
                refund_due=original.refund_due), time=now)
            log.info("invoice cancelled", invoice_id=str(original.id), number=original.number,
                     cancellation=issued.number)
        else:
            await self.deps.outbox.add(session, InvoiceIssuedV1(**_common(issued, _actor(issued), now),
                                                                invoice=published(issued, base)), time=now)
            log.debug("invoice issued", invoice_id=str(issued.id), number=issued.number)
        await repository.count_progress(session, issued.run_id, self.worker, issued=1)

    async def _failed(self, inv: model.Invoice, error: str) -> None:
        """A check or a render failed (a rendering process died, or a bug): counted on the
        invoice, retried later with backoff; the run sees it."""
        async with self.sessions.begin() as session:
            attempts = await repository.render_failed(session, inv.id, error=error)
            await repository.set_claim(session, [inv.id], for_s=_retry_in_s(attempts))
            if inv.run_id is not None:
                await repository.add_run_error(session, inv.run_id, {
                    "invoice_id": str(inv.id), "number": inv.number, "attempt": attempts, "error": error[:500],
                    "at": self.deps.clock.now().isoformat()})
        log.error("issuing step failed; retrying later", invoice_id=str(inv.id), number=inv.number,
                  attempts=attempts, retry_in_s=_retry_in_s(attempts), error=error)

    # -- the loop ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: number what is queued while the render tasks keep up, render what is
        numbered (ours first, then anybody's whose claim ran out). On stop, what this worker
        numbered is rendered before it returns."""
        queue: asyncio.Queue[uuid.UUID] = asyncio.Queue(maxsize=2 * self.batch)
        renderers: list[asyncio.Task] = []
        try:
            await self.pool.start()
            renderers = [asyncio.create_task(self._render_loop(queue, stop), name=f"render-{n}")
                         for n in range(self.pool.processes + 1)]
            log.info("issuing pipeline started", worker=self.worker, rendering_processes=self.pool.processes,
                     batch=self.batch)
            backoff = self.poll_s
            while not stop.is_set():
                try:
                    ids = await self.prepare_and_number()
                    backoff = self.poll_s
                except Exception:
                    log.exception("preparing or numbering failed; retrying", retry_in_s=backoff)
                    ids = []
                    backoff = min(backoff * 2, 5.0)
                for invoice_id in ids:
                    await queue.put(invoice_id)  # waits while the render tasks are behind
                if not ids:
                    await faults.pause(stop, backoff)
            await asyncio.gather(*renderers)
        finally:
            for task in renderers:
                task.cancel()
            await asyncio.gather(*renderers, return_exceptions=True)
            await asyncio.to_thread(self.pool.close)  # waits for a render in progress, off the event loop
            log.info("issuing pipeline stopped", worker=self.worker, issued=self.issued,
                     ms=self.times.per_invoice_ms())

    async def _render_loop(self, queue: asyncio.Queue[uuid.UUID], stop: asyncio.Event) -> None:
        while not (stop.is_set() and queue.empty()):
            try:
                invoice_id = queue.get_nowait()
            except asyncio.QueueEmpty:
                # nothing of ours: anybody's whose claim ran out (a worker died, a retry is due)
                if await self._render_safely(None):
                    continue
                try:
                    invoice_id = await asyncio.wait_for(queue.get(), timeout=self.poll_s * 5)
                except TimeoutError:
                    continue
            await self._render_safely(invoice_id)

    async def _render_safely(self, invoice_id: uuid.UUID | None) -> bool:
        try:
            return await self.render_one(invoice_id)
        except Exception:  # the database or the broker: the invoice stays numbered and claimed, retried
            log.exception("rendering step failed; retrying", invoice_id=str(invoice_id) if invoice_id else None)
            await asyncio.sleep(1)
            return False


"""The delivery loop: due e-mails sent `delivery_concurrency` at a time, each on its own.

Every sender slot delivers one e-mail with `services.deliver_one`: its own transaction, its
own `FOR UPDATE SKIP LOCKED` claim (so neither another slot nor another replica takes the
same e-mail), its own SMTP connection from the mailer's pool, its own `delivery_timeout_s`.
The loop claims e-mails one after the other (a claim is one short query) and hands each to a
free slot at once; it does not wait for the others to finish, so an e-mail that hangs holds
one slot and nothing else. While e-mails are due the slots are kept busy; only once a claim
finds none does the loop wait `delivery_interval_s` before it looks again.

A backlog (from the first claim after an empty queue until the queue is empty again and its
last e-mail is done) is logged with its counts every `PROGRESS_EVERY` e-mails and at its end.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kontor import metrics
from kontor.logging import get_logger
from kontor_notifications.domain import model
from kontor_notifications.service_layer import services

log = get_logger(__name__)

PROGRESS_EVERY = 100
STOP_GRACE_S = 5.0  # on shutdown, e-mails in flight get this long to finish; then they are abandoned (still due)


@dataclass
class Backlog:
    """The counts of one stretch of work, from a first claim to an empty queue."""

    started: float
    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: {model.SENT: 0, model.PENDING: 0, model.FAILED: 0,
                                                              "error": 0})
    drained: bool = False  # a claim found nothing due since this backlog began

    @property
    def done(self) -> int:
        return sum(self.outcomes.values())

    def counts(self, now: float) -> dict:
        elapsed = max(now - self.started, 1e-6)
        return {"handled": self.done, "sent": self.outcomes[model.SENT], "retrying": self.outcomes[model.PENDING],
                "failed": self.outcomes[model.FAILED], "errors": self.outcomes["error"],
                "in_flight": self.claimed - self.done, "seconds": round(elapsed, 2),
                "per_second": round(self.done / elapsed, 1)}


class DeliveryLoop:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession], deps: services.Deps, *,
                 concurrency: int | None = None) -> None:
        self.session_factory = session_factory
        self.deps = deps
        self.concurrency = concurrency or deps.settings.delivery_concurrency
        self._in_flight: set[asyncio.Task] = set()
        self._backlog: Backlog | None = None
        self.claimed = 0  # e-mails claimed by this loop so far

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set: without pause while e-mails are due, then every
        `delivery_interval_s`."""
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stopping.done():
                if not await self._fill(stopping):  # nothing due now
                    if self.deps.mailer is not None:
                        await self.deps.mailer.close_idle()
                    await asyncio.wait([stopping], timeout=self.deps.settings.delivery_interval_s)
        except asyncio.CancelledError:
            self._abandon()
            raise
        finally:
            stopping.cancel()
        await self._finish_in_flight(STOP_GRACE_S)

    async def drain(self, limit: int | None = None) -> int:
        """Deliver until nothing is due (or `limit` e-mails were claimed) and those claimed are
        done; how many were claimed."""
        before = self.claimed
        never = asyncio.get_running_loop().create_future()
        try:
            await self._fill(never, limit)
        finally:
            never.cancel()
        await self._finish_in_flight(None)
        return self.claimed - before

    async def _fill(self, stopping: asyncio.Future, limit: int | None = None) -> bool:
        """Hand due e-mails to free slots; False as soon as a claim finds none due."""
        started = self.claimed
        while not stopping.done() and (limit is None or self.claimed - started < limit):
            if len(self._in_flight) >= self.concurrency:
                await asyncio.wait([*self._in_flight, stopping], return_when=asyncio.FIRST_COMPLETED)
                continue
            claimed = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._deliver(claimed), name="email-delivery-slot")
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            await asyncio.wait([claimed, stopping], return_when=asyncio.FIRST_COMPLETED)
            if not claimed.done() or not claimed.result():
                self._drained()
                return False
        return True

    async def _deliver(self, claimed: asyncio.Future) -> None:
        backlog: Backlog | None = None

        def on_claimed(found: bool) -> None:
            nonlocal backlog
            if found:
                backlog = self._claim()
            if not claimed.done():
                claimed.set_result(found)

        status: str | None = "error"
        try:
            status = await services.deliver_one(self.session_factory, self.deps, on_claimed=on_claimed)
        except Exception:
            log.exception("delivering an e-mail failed; it stays due")
        finally:
            if not claimed.done():  # failed (or cancelled) before the claim answered
                claimed.set_result(False)
            if backlog is not None:
                metrics.EMAIL_ATTEMPTS.labels(status or "error").inc()
                self._count(backlog, status)

    def _claim(self) -> Backlog:
        self.claimed += 1
        if self._backlog is None or self._backlog.drained:
            self._backlog = Backlog(time.monotonic())
        self._backlog.claimed += 1
        return self._backlog

    def _count(self, backlog: Backlog, status: str | None) -> None:
        backlog.outcomes[status or "error"] += 1
        if backlog.done % PROGRESS_EVERY == 0:
            log.info("delivery progress", **backlog.counts(time.monotonic()))
        self._maybe_done(backlog)

    def _drained(self) -> None:
        if self._backlog is not None and not self._backlog.drained:
            self._backlog.drained = True
            self._maybe_done(self._backlog)

    def _maybe_done(self, backlog: Backlog) -> None:
        if backlog.drained and backlog.done == backlog.claimed and backlog.claimed > 1:
            log.info("delivery backlog done", **backlog.counts(time.monotonic()))

    async def _finish_in_flight(self, grace_s: float | None) -> None:
        if not self._in_flight:
            return
        _, late = await asyncio.wait(set(self._in_flight), timeout=grace_s)
        if late:
            log.warning("e-mails still being sent at shutdown are abandoned; they stay due", count=len(late))
            self._abandon()
            await asyncio.gather(*late, return_exceptions=True)

    def _abandon(self) -> None:
        for task in self._in_flight:
            task.cancel()


async def deliver_due(session_factory: async_sessionmaker[AsyncSession], deps: services.Deps) -> int:
    """One pass over the due e-mails: at most `delivery_batch_size`, `delivery_concurrency` at a
    time; how many were handled. (The worker runs `DeliveryLoop.run`, which goes on until it stops.)"""
    handled = await DeliveryLoop(session_factory, deps).drain(limit=deps.settings.delivery_batch_size)
    if handled:
        log.info("delivery pass done", handled=handled)
    return handled

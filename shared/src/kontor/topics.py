"""Topic names. Logical names are fixed by the event catalogue; a prefix keeps test runs apart."""
from __future__ import annotations

from dataclasses import dataclass

CLIENTS = "kontor.clients.v1"
ORDERS = "kontor.orders.v1"
INVOICES = "kontor.invoices.v1"
NOTIFICATIONS = "kontor.notifications.v1"
ALL = (CLIENTS, ORDERS, INVOICES, NOTIFICATIONS)


@dataclass(frozen=True)
class Topics:
    prefix: str = ""

    def name(self, logical: str) -> str:
        return f"{self.prefix}{logical}"

    def dlq(self, logical: str, group: str) -> str:
        """Dead-letter topic of one consumer group: `<topic>.dlq.<group>`."""
        return f"{self.name(logical)}.dlq.{group}"

    def all(self) -> list[str]:
        return [self.name(t) for t in ALL]

"""What every aggregate with a status machine shares: checking that an action is allowed
in the current status (else `Conflict` naming it), and the next version of the aggregate."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar, Protocol, TypeVar

from kontor.errors import Conflict


class Versioned(Protocol):
    """A dataclass aggregate with a version."""
    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def version(self) -> int: ...


A = TypeVar("A", bound=Versioned)


def require(aggregate, action: str, transitions: Mapping[str, frozenset[str]], what: str) -> None:
    allowed = transitions[action]
    if aggregate.status not in allowed:
        raise Conflict(f"cannot {action.replace('_', ' ')} {what} in status {aggregate.status} "
                       f"(allowed from: {', '.join(sorted(allowed))})", current_status=aggregate.status)


def next_version(aggregate: A, **changes) -> A:
    """The changed aggregate with its version one higher (optimistic locking)."""
    return replace(aggregate, version=aggregate.version + 1, **changes)

"""Domain errors, free of any web framework; the API layer maps them to HTTP answers."""
from __future__ import annotations


class DomainError(Exception):
    status_code = 400


class NotFound(DomainError):
    status_code = 404

    def __init__(self, what: str, ident: object) -> None:
        super().__init__(f"{what} {ident} not found")
        self.what = what
        self.ident = ident


class Forbidden(DomainError):
    status_code = 403


class Conflict(DomainError):
    """An action that the current state does not allow (e.g. an illegal transition)."""

    status_code = 409

    def __init__(self, message: str, *, current_status: str | None = None) -> None:
        super().__init__(message)
        self.current_status = current_status


class InvalidInput(DomainError):
    """One or more fields are invalid; each error names its field (dotted path)."""

    status_code = 422

    def __init__(self, errors: list[tuple[str, str]] | None = None, *, field: str | None = None,
                 message: str | None = None, location: str = "body") -> None:
        self.errors = list(errors or [])
        self.location = location  # "body", "query" or "path", as in FastAPI's own 422 answers
        if field is not None:
            self.errors.append((field, message or "invalid"))
        super().__init__("; ".join(f"{f}: {m}" for f, m in self.errors))

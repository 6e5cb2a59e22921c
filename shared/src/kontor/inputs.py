"""Bounded input types for the services' APIs: what any value that enters may be.

Every number has a bound and at most a fixed number of decimals, every text a length and
no NUL or lone surrogate (PostgreSQL cannot store them, UTF-8 cannot encode them), every
business date a sane range, every e-mail address passes `email-validator`. A value outside
answers 422 naming the field, never 500.

`InputGuard` (installed by `kontor.api.create_service_api`) enforces what no model can: JSON
bodies without `NaN`/`Infinity`/`1e999`, and no NUL or lone surrogate anywhere in a body, a
query or a path.
"""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

# Business dates (order dates, service periods, due dates, payments, runs): the cooperative's
# records start after 2000; nothing is planned beyond 2099. Outside is a typo, not a date.
EARLIEST_DATE = dt.date(2000, 1, 1)
LATEST_DATE = dt.date(2099, 12, 31)
# The largest amount of one order line, invoice or payment, in any currency (JPY included).
MAX_AMOUNT = Decimal("999999999.99")
MAX_QUANTITY = Decimal("1000000")
MAX_OFFSET = 1_000_000


class Input(BaseModel):
    """Base of every request body: unknown fields are refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


def _in_date_range(value: dt.date) -> dt.date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValueError(f"must be between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()}")
    return value


BusinessDate = Annotated[dt.date, AfterValidator(_in_date_range)]


def _email(value: str) -> str:
    try:
        # Syntax only: whether the domain receives mail is for the SMTP server to say.
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from None


EmailAddress = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254), AfterValidator(_email)]

Amount = Annotated[Decimal, Field(gt=0, le=MAX_AMOUNT, decimal_places=2, allow_inf_nan=False,
                                  description="decimal string with at most the currency's decimals (JPY none)")]
SignedAmount = Annotated[Decimal, Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT, decimal_places=2, allow_inf_nan=False)]
Quantity = Annotated[Decimal, Field(gt=0, le=MAX_QUANTITY, decimal_places=4, allow_inf_nan=False,
                                    description="decimal string, e.g. \"2.5\"")]
Percentage = Annotated[Decimal, Field(gt=0, le=100, decimal_places=2, allow_inf_nan=False)]


def check_currency_decimals(amount: Decimal, currency: str, field: str) -> None:
    """Raise ValueError unless `amount` has at most the currency's minor-unit decimals."""
    from kontor.money import MINOR_UNITS

    places = MINOR_UNITS.get(currency, 2)
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        raise ValueError(f"{field}: at most {places} decimals in {currency}")


# --- what no model can check: the raw request ------------------------------------------------------


class UnsafeInput(ValueError):
    def __init__(self, loc: list[str | int], msg: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


def unsafe_text_reason(value: str) -> str | None:
    """Why `value` cannot be stored as text, or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must not contain lone surrogates (not valid Unicode)"
    return None


def _reject_constant(name: str) -> Any:
    raise UnsafeInput(["body"], f"{name} is not a valid JSON number")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise UnsafeInput(["body"], f"{literal} is out of range")
    return value


def _walk(value: Any, loc: list[str | int]) -> None:
    if isinstance(value, str):
        reason = unsafe_text_reason(value)
        if reason:
            raise UnsafeInput(loc, reason)
    elif isinstance(value, dict):
        for key, item in value.items():
            reason = unsafe_text_reason(key)
            if reason:
                raise UnsafeInput(loc, f"a key {reason}")
            _walk(item, [*loc, key])
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, [*loc, i])


def check_json_body(body: bytes) -> None:
    """Raise UnsafeInput for NaN/Infinity/overflowing numbers or unsafe text; malformed JSON is
    left for the framework to answer (its 422 says where)."""
    try:
        parsed = json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
    except UnsafeInput:
        raise
    except (ValueError, RecursionError):
        return
    _walk(parsed, ["body"])


def check_query(pairs: list[tuple[str, str]]) -> None:
    for name, value in pairs:
        if unsafe_text_reason(name):
            raise UnsafeInput(["query"], f"a parameter name {unsafe_text_reason(name)}")
        reason = unsafe_text_reason(value)
        if reason:
            raise UnsafeInput(["query", name], reason)


class InputGuard:
    """ASGI middleware: answers 422 before routing for a request no handler can take safely."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from urllib.parse import parse_qsl

        try:
            path = scope.get("path", "")
            reason = unsafe_text_reason(path)
            if reason:
                raise UnsafeInput(["path"], reason)
            query = scope.get("query_string", b"").decode("latin-1")
            check_query(parse_qsl(query, keep_blank_values=True))  # decoded as Starlette decodes it
            content_type = dict(scope.get("headers") or []).get(b"content-type", b"").decode("latin-1").lower()
            if content_type and "json" not in content_type:  # without a type FastAPI reads JSON too
                await self.app(scope, receive, send)
                return
            body, messages = await _read_body(receive)
            check_json_body(body)
        except UnsafeInput as exc:
            await _answer_422(send, exc)
            return

        replay = iter(messages)

        async def receive_again() -> dict:
            try:
                return next(replay)
            except StopIteration:
                return await receive()

        await self.app(scope, receive_again, send)


async def _read_body(receive: Any) -> tuple[bytes, list[dict]]:
    messages: list[dict] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks), messages


async def _answer_422(send: Any, exc: UnsafeInput) -> None:
    body = json.dumps({"detail": [{"loc": exc.loc, "msg": exc.msg, "type": "value_error"}]},
                      ensure_ascii=True).encode()
    await send({"type": "http.response.start", "status": 422,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

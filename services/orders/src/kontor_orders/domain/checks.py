"""The automatic checks on submission (DESIGN.md §2). Pure.

Rejections (the member sees the reason): a blocked client; a client restricted to
advance payment when the mode is not `advance`; a sector the cooperative cannot process.
A flag for the advisor: an hourly fee below what pays the minimum wage if the member were
employed: minimum wage × (1 + employer on-costs) / (1 − cooperative fee), i.e. 13.90 ×
1.21 / 0.90 ≈ 18.69 EUR in 2026; a day counts 8 hours, a week 40; other currencies are
converted at the order's stored exchange rate; lump sums cannot be judged.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from kontor_orders.domain.catalogue import SECTORS
from kontor_orders.domain.model import Flag, Order, Rejection, submitted

HOURS_PER_UNIT = {"hour": Decimal(1), "day": Decimal(8), "week": Decimal(40)}
CENT = Decimal("0.01")


@dataclass(frozen=True)
class MinimumFeeRule:
    minimum_wage_eur: Decimal = Decimal("13.90")
    employer_on_costs: Decimal = Decimal("0.21")
    cooperative_fee: Decimal = Decimal("0.10")

    @property
    def threshold_eur(self) -> Decimal:
        return (self.minimum_wage_eur * (1 + self.employer_on_costs) / (1 - self.cooperative_fee)).quantize(
            CENT, rounding=ROUND_HALF_UP)


def rejection_for(order: Order) -> Rejection | None:
    client = order.client
    if client.standing == "blocked":
        return Rejection("automatic_check", f"the client is blocked: {client.standing_reason or 'unpaid debt'}")
    if client.standing == "advance_payment_only" and submitted(order.payment, "payment").mode != "advance":
        return Rejection("automatic_check", "the client is restricted to advance payment "
                                            f"({client.standing_reason or 'unpaid invoices'}); "
                                            "choose payment mode advance")
    sector = SECTORS[submitted(order.sector, "sector")]
    if not sector.processable:
        return Rejection("automatic_check", f"the cooperative cannot process orders of the sector {sector.name_en!r}")
    return None


def minimum_fee_flags(order: Order, *, exchange_rate_eur: Decimal, rule: MinimumFeeRule) -> tuple[Flag, ...]:
    threshold = rule.threshold_eur
    flags = []
    for i, line in enumerate(order.lines):
        hours = HOURS_PER_UNIT.get(line.unit)
        if hours is None:
            continue
        hourly_eur = (line.unit_price * exchange_rate_eur / hours).quantize(CENT, rounding=ROUND_HALF_UP)
        if hourly_eur < threshold:
            flags.append(Flag("minimum_fee", f"line {i + 1}: {hourly_eur} EUR per hour is below {threshold} EUR",
                              {"line": i, "unit": line.unit, "unit_price": str(line.unit_price),
                               "currency": order.currency, "exchange_rate_eur": str(exchange_rate_eur),
                               "hourly_fee_eur": str(hourly_eur), "threshold_eur": str(threshold)}))
    return tuple(flags)

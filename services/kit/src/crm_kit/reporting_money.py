"""One rounding rule for money in a tenant's reporting currency, wherever it is shown:
the pipeline board's column totals (deals) and every report (gateway, from the
reporting service's exact sums).

Each amount is converted exactly (Decimal, with the rate valid on its day), the
converted amounts are summed exactly, and only the shown sum is rounded, once, to the
currency's minor unit, half to even (so a total of x.xx5 is the same cent on the board
and in the revenue report, and repeated roundings do not drift upwards). Amounts in a
deal's own currency (an invoice) keep their own rule (crm_deals.money).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

ROUNDING = ROUND_HALF_EVEN


def round_reporting(value: Decimal, places: int) -> Decimal:
    """`value` in the reporting currency, rounded to its `places` minor-unit digits."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUNDING)

"""Money: integer fen, one rounding rule, splits that always add up (settlement, pricing).

CONVENTIONS.md: one amount is rounded half away from zero to the fen (`ROUND_HALF_UP`), here
and nowhere else; rates and coefficients are `Decimal`, carried as strings in events; an amount
split between parties goes by largest remainder, ties broken by party id, so the parts always
sum exactly to the whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from domain.shared import InvalidInput

ROUNDING = "half away from zero to the fen (ROUND_HALF_UP), each line on its own"
MAX_FEN = 10**14  # a trillion yuan: anything larger is a typo, not a payout


def round_fen(value: Decimal) -> int:
    """The one rounding rule: half away from zero to the fen."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def scale(amount: int, rate: Decimal) -> int:
    """`amount` fen times `rate`, rounded to the fen."""
    return round_fen(Decimal(amount) * rate)


def yuan(amount: int) -> str:
    """Fen as yuan for people: 8000 -> "80.00", -150 -> "-1.50"."""
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole}.{cents:02d}"


def split(amount: int, weights: Mapping[str, Decimal | int]) -> dict[str, int]:
    """`amount` shared by weight, by largest remainder: each party first gets its share
    rounded down, then the fen left over go one each to the largest remainders, ties to the
    smaller party id. A negative amount (a clawback) splits like its positive and is negated,
    so a refund takes back from each party exactly what the sale gave it."""
    if not weights:
        raise InvalidInput("a split needs at least one party", field="parties")
    total_weight = sum((Decimal(w) for w in weights.values()), Decimal(0))
    if any(Decimal(w) < 0 for w in weights.values()) or total_weight <= 0:
        raise InvalidInput("split weights must be non-negative and not all zero", field="parties")
    sign = -1 if amount < 0 else 1
    whole = abs(amount)
    shares: dict[str, int] = {}
    remainders: list[tuple[Decimal, str]] = []
    for party, weight in weights.items():
        exact = Decimal(whole) * Decimal(weight) / total_weight
        floor = int(exact.to_integral_value(rounding=ROUND_DOWN))
        shares[party] = floor
        remainders.append((exact - floor, party))
    left = whole - sum(shares.values())
    # Largest remainder first; equal remainders by party id, so the result is the same
    # whatever order the weights came in.
    for _, party in sorted(remainders, key=lambda r: (-r[0], r[1]))[:left]:
        shares[party] += 1
    return {party: sign * share for party, share in shares.items()}


def parse_rate(value: Any, field: str, *, minimum: Decimal = Decimal(0)) -> Decimal:
    """A rate or coefficient as a string or whole number ("1.2", "0.05", 1), never a float:
    a float has already lost the exact decimal the rule's author wrote."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInput(f'{field} must be a decimal string such as "1.2"', field=field)
    try:
        rate = Decimal(value)
    except InvalidOperation:
        raise InvalidInput(f"{field} is not a decimal number: {value!r}", field=field) from None
    if not rate.is_finite() or rate < minimum or rate > 1000:
        raise InvalidInput(f"{field} must be between {minimum} and 1000", field=field)
    return rate


def parse_fen(value: Any, field: str, *, signed: bool = False) -> int:
    """An amount in fen: a whole number."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field} must be a whole number of fen", field=field)
    if (value < 0 and not signed) or abs(value) > MAX_FEN:
        what = "at most" if signed else "between 0 and"
        raise InvalidInput(f"{field} must be {what} {MAX_FEN} fen", field=field)
    return value

"""Helpers shared by every platform adapter (taobao, jd, pdd, douyin, youzan).

Stable, small API — adapters in other hands import it, so add, don't change:

Paths. Every getter takes the mapping `obj`, the `key` to read and `path`, the path of `obj`
itself inside the payload ("" for the root). The error's `field` is `path.key`, e.g.
`req_int(line, "num", "trade.orders.order[1]")` fails with field `trade.orders.order[1].num`.
`at(path, key_or_index)` builds such paths (`at("a.b", 2)` -> `a.b[2]`).

"Missing" means: key absent, value None, or a blank string. Platforms send `""` (and JD
sometimes `"0001-01-01 00:00:00"` / Youzan `"1970-01-01 08:00:00"` style zero dates are NOT
treated as missing — the adapter decides, see `opt_beijing_time(..., zero_is_none=True)`).

    at(path, key) -> str                       path of a child
    req(obj, key, path) -> Any                 any non-missing value
    opt(obj, key) -> Any | None                value, or None when missing
    req_mapping(obj, key, path) -> Mapping     a JSON object
    req_list(obj, key, path, non_empty=True) -> list
    req_str(obj, key, path) -> str             str; ints accepted (ids sent as numbers), stripped
    opt_str(obj, key, path) -> str | None
    req_int(obj, key, path, minimum=None) -> int   int or decimal-digit string; no bool/fraction
    opt_int(obj, key, path, default=None, minimum=None) -> int | None
    yuan_to_fen(value, field, signed=False) -> int   "12.50" / 12.5 / 12 -> 1250 (Decimal,
                                               ROUND_HALF_UP to the fen, as CONVENTIONS.md)
    req_yuan(obj, key, path, signed=False) -> int     yuan_to_fen on a required field
    opt_yuan(obj, key, path, default=0, signed=False) -> int
    fen(value, field, signed=False) -> int     a platform amount already in fen (integer)
    req_fen / opt_fen(obj, key, path, ...)     same, on a field
    beijing_time(value, field) -> datetime     "2026-03-01 10:00:00" (Asia/Shanghai, UTC+8,
                                               no DST) -> aware UTC; also "...T..." and a
                                               fractional second; an explicit offset is honoured
    req_beijing_time / opt_beijing_time(obj, key, path, zero_is_none=False)
    unix_time(value, field) -> datetime        unix seconds (int or digit string) -> aware UTC;
                                               0 / negative are rejected
    req_unix_time / opt_unix_time(obj, key, path, zero_is_none=True)
    unknown_status(value, field) -> InvalidInput   code "unknown_status", to `raise`
    invalid(detail, field) -> InvalidInput     code "invalid_input", to `raise`
    map_status(value, table, field) -> str     table[value], or raise unknown_status
    allocate(amount, weights) -> dict[str, int]    split fen by largest remainder (CONVENTIONS),
                                               weights {key: weight}; ties by key; sums exactly
    clean_phone(value) -> str                  a usable phone number, or "" when the platform
                                               sent it masked ("138****5678") or encrypted, so no
                                               bogus phone index is derived from it

Error details never quote values of fields that may hold personal data; they quote only the
field path and, for statuses / malformed numbers and times, the offending value (these are
not personal).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from domain.shared import InvalidInput

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

_MISSING = object()
_INT = re.compile(r"^[+-]?\d+$")
_TIME = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?"
)
_ZERO_TIMES = (
    "0000-00-00 00:00:00",
    "0000-00-00",
    "0001-01-01 00:00:00",
    "1970-01-01 08:00:00",
    "1970-01-01 00:00:00",
)


# --- paths and presence ---------------------------------------------------------------------


def at(path: str, key: str | int) -> str:
    """The path of `key` (a dict key) or index (an int) under `path`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def invalid(detail: str, field: str) -> InvalidInput:
    return InvalidInput(detail, field=field)


def unknown_status(value: Any, field: str) -> InvalidInput:
    return InvalidInput(f"unknown status {value!r} in {field}", field=field, code="unknown_status")


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def opt(obj: Mapping[str, Any], key: str) -> Any | None:
    value = obj.get(key)
    return None if _is_missing(value) else value


def req(obj: Mapping[str, Any], key: str, path: str) -> Any:
    value = obj.get(key, _MISSING)
    field = at(path, key)
    if value is _MISSING or _is_missing(value):
        raise invalid(f"{field} is required", field)
    return value


def req_mapping(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = req(obj, key, path)
    if not isinstance(value, Mapping):
        raise invalid(f"{at(path, key)} must be an object", at(path, key))
    return value


def req_list(obj: Mapping[str, Any], key: str, path: str, *, non_empty: bool = True) -> list[Any]:
    field = at(path, key)
    value = obj.get(key) if non_empty else obj.get(key, [])
    if value is None and not non_empty:
        return []
    if not isinstance(value, list):
        raise invalid(f"{field} is required and must be a list", field)
    if non_empty and not value:
        raise invalid(f"{field} must not be empty", field)
    return value


# --- text and integers ---------------------------------------------------------------------


def _as_str(value: Any, field: str) -> str:
    if isinstance(value, bool):
        raise invalid(f"{field} must be text", field)
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        raise invalid(f"{field} must be text", field)
    return value.strip()


def req_str(obj: Mapping[str, Any], key: str, path: str) -> str:
    return _as_str(req(obj, key, path), at(path, key))


def opt_str(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    value = opt(obj, key)
    return None if value is None else _as_str(value, at(path, key))


def _as_int(value: Any, field: str, minimum: int | None) -> int:
    if isinstance(value, bool):
        raise invalid(f"{field} must be an integer", field)
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _INT.match(value.strip()):
        number = int(value.strip())
    else:
        raise invalid(f"{field} must be an integer, got {value!r}", field)
    if minimum is not None and number < minimum:
        raise invalid(f"{field} must be at least {minimum}, got {number}", field)
    return number


def req_int(obj: Mapping[str, Any], key: str, path: str, *, minimum: int | None = None) -> int:
    return _as_int(req(obj, key, path), at(path, key), minimum)


def opt_int(
    obj: Mapping[str, Any],
    key: str,
    path: str,
    *,
    default: int | None = None,
    minimum: int | None = None,
) -> int | None:
    value = opt(obj, key)
    return default if value is None else _as_int(value, at(path, key), minimum)


# --- money ---------------------------------------------------------------------------------

_FEN = Decimal("0.01")


def yuan_to_fen(value: Any, field: str, *, signed: bool = False) -> int:
    """A yuan amount ("12.50", 12.5, 12) to integer fen, ROUND_HALF_UP (half away from zero)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise invalid(f"{field} must be an amount in yuan", field)
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise invalid(f"{field} must be an amount in yuan, got {value!r}", field) from None
    if not amount.is_finite():
        raise invalid(f"{field} must be an amount in yuan, got {value!r}", field)
    if amount < 0 and not signed:
        raise invalid(f"{field} must not be negative, got {value!r}", field)
    return int(amount.quantize(_FEN, rounding=ROUND_HALF_UP) * 100)


def req_yuan(obj: Mapping[str, Any], key: str, path: str, *, signed: bool = False) -> int:
    return yuan_to_fen(req(obj, key, path), at(path, key), signed=signed)


def opt_yuan(
    obj: Mapping[str, Any], key: str, path: str, *, default: int = 0, signed: bool = False
) -> int:
    value = opt(obj, key)
    return default if value is None else yuan_to_fen(value, at(path, key), signed=signed)


def fen(value: Any, field: str, *, signed: bool = False) -> int:
    """An amount the platform already sends in fen (Douyin, some Youzan fields)."""
    return _as_int(value, field, None if signed else 0)


def req_fen(obj: Mapping[str, Any], key: str, path: str, *, signed: bool = False) -> int:
    return fen(req(obj, key, path), at(path, key), signed=signed)


def opt_fen(
    obj: Mapping[str, Any], key: str, path: str, *, default: int = 0, signed: bool = False
) -> int:
    value = opt(obj, key)
    return default if value is None else fen(value, at(path, key), signed=signed)


# --- times ---------------------------------------------------------------------------------


def beijing_time(value: Any, field: str) -> datetime:
    """A platform wall-clock time in Beijing time to an aware UTC datetime."""
    if not isinstance(value, str):
        raise invalid(f"{field} must be a time like 2026-03-01 10:00:00", field)
    text = value.strip()
    match = _TIME.match(text)
    if not match:
        raise invalid(f"{field} must be a time like 2026-03-01 10:00:00, got {value!r}", field)
    rest = text[match.end() :]
    tz: timezone = BEIJING
    if rest:
        if rest in ("Z", "z"):
            tz = UTC
        else:
            offset = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", rest)
            if not offset:
                raise invalid(f"{field} has an unreadable time {value!r}", field)
            sign = -1 if offset.group(1) == "-" else 1
            tz = timezone(
                sign * timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3)))
            )
    y, mo, d, h, mi, s, frac = match.groups()
    try:
        local = datetime(
            int(y),
            int(mo),
            int(d),
            int(h),
            int(mi),
            int(s or 0),
            int((frac or "0").ljust(6, "0")),
            tzinfo=tz,
        )
    except ValueError:
        raise invalid(f"{field} is not a valid time: {value!r}", field) from None
    return local.astimezone(UTC)


def req_beijing_time(obj: Mapping[str, Any], key: str, path: str) -> datetime:
    return beijing_time(req(obj, key, path), at(path, key))


def opt_beijing_time(
    obj: Mapping[str, Any], key: str, path: str, *, zero_is_none: bool = False
) -> datetime | None:
    value = opt(obj, key)
    if value is None:
        return None
    if zero_is_none and isinstance(value, str) and value.strip() in _ZERO_TIMES:
        return None
    return beijing_time(value, at(path, key))


def unix_time(value: Any, field: str) -> datetime:
    """Unix seconds (int, or a string of digits) to an aware UTC datetime."""
    seconds = _as_int(value, field, 1)
    if seconds > 10**11:  # milliseconds sent by mistake would land in year 5000+
        raise invalid(f"{field} must be unix seconds, got {seconds}", field)
    return datetime.fromtimestamp(seconds, tz=UTC)


def req_unix_time(obj: Mapping[str, Any], key: str, path: str) -> datetime:
    return unix_time(req(obj, key, path), at(path, key))


def opt_unix_time(
    obj: Mapping[str, Any], key: str, path: str, *, zero_is_none: bool = True
) -> datetime | None:
    value = opt(obj, key)
    if value is None:
        return None
    if zero_is_none and value in (0, "0"):
        return None
    return unix_time(value, at(path, key))


# --- statuses, splitting, phones ------------------------------------------------------------


def priced_items(
    items: list[Any], path: str, *, sku: str, quantity: str, price: str, title: str
) -> list[dict[str, Any]]:
    """Line rows from a list of items priced in yuan, named by the platform's own keys: id
    (the sku; `sku#i` when a sku repeats), title, quantity, unit price and gross in fen."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        item_path = at(path, i)
        if not isinstance(item, Mapping):
            raise invalid(f"{item_path} must be an object", item_path)
        sku_id = req_str(item, sku, item_path)
        num = req_int(item, quantity, item_path, minimum=1)
        unit = req_yuan(item, price, item_path)
        line_id = sku_id if sku_id not in seen else f"{sku_id}#{i}"
        seen.add(line_id)
        rows.append(
            {
                "line_id": line_id,
                "sku": sku_id,
                "title": req_str(item, title, item_path),
                "num": num,
                "price": unit,
                "gross": unit * num,
            }
        )
    return rows


def map_status(value: Any, table: Mapping[Any, str], field: str) -> str:
    """The normalised status for a platform status code, or InvalidInput(unknown_status)."""
    try:
        return table[value]
    except (KeyError, TypeError):
        raise unknown_status(value, field) from None


def allocate(amount: int, weights: Mapping[str, int]) -> dict[str, int]:
    """Split `amount` fen over `weights` proportionally: largest remainder, ties broken by key,
    so the parts always sum exactly to `amount` (CONVENTIONS.md). All-zero weights split evenly.
    """
    if not weights:
        return {}
    keys = sorted(weights)
    basis = {k: max(weights[k], 0) for k in keys}
    total = sum(basis.values())
    if total == 0:
        basis = dict.fromkeys(keys, 1)
        total = len(keys)
    parts = {k: amount * basis[k] // total for k in keys}
    remainders = {k: amount * basis[k] % total for k in keys}
    left = amount - sum(parts.values())
    for k in sorted(keys, key=lambda k: (-remainders[k], k))[:left]:
        parts[k] += 1
    return parts


_PHONE = re.compile(r"^\+?\d{5,20}$")


def clean_phone(value: str | None) -> str:
    if not value:
        return ""
    text = re.sub(r"[\s()-]", "", value)
    return text if _PHONE.match(text) else ""

"""Dynamic forms (动态表单): the fields a workflow transition requires, and their validation.

A form is part of a workflow definition, so it is versioned with it. Validation happens here,
on the server, for every field at once: a bad form is refused naming each failing field, and
nothing is recorded. Values come back normalised (a phone without spaces or +86, a number as
an int or a Decimal string, money as integer fen), so events carry one spelling of each.

Which values are personal data (a phone, a signature, free text about the customer) is a
property of the field type; the service layer seals those with the customer's key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.shared import InvalidInput

FIELD_TYPES = ("text", "number", "money", "date", "enum", "phone", "photo", "signature")
PERSONAL_TYPES = frozenset({"text", "phone", "signature"})  # sealed per customer
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")  # mainland China mobile numbers
# A reference to a stored photo or signature image (the media store keeps the bytes).
_MEDIA_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-./:]{7,255}$")
MAX_TEXT = 2000
MAX_PHOTOS = 20


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    label: str = ""
    required: bool = False
    minimum: Decimal | None = None  # number, money (fen)
    maximum: Decimal | None = None
    integer: bool = False  # number: whole numbers only
    pattern: str | None = None  # text: the whole value must match
    max_length: int = MAX_TEXT  # text
    values: tuple[str, ...] = ()  # enum
    earliest: date | None = None  # date
    latest: date | None = None
    max_items: int = 1  # photo: how many references

    @property
    def personal(self) -> bool:
        return self.type in PERSONAL_TYPES

    def as_dict(self) -> dict[str, Any]:
        """The stored spelling (in definition events): only what differs from the defaults."""
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        for key, default in _DEFAULTS.items():
            value = getattr(self, key)
            if value != default:
                out[key] = _plain(value)
        return out


_DEFAULTS = {
    f.name: f.default
    for f in FieldSpec.__dataclass_fields__.values()
    if f.name not in ("name", "type")
}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


@dataclass
class FormErrors:
    """Every failing field, so one round trip fixes them all."""

    prefix: str
    found: list[dict[str, str]] = field(default_factory=list)

    def add(self, name: str, detail: str) -> None:
        self.found.append({"field": f"{self.prefix}.{name}", "detail": detail})

    def raise_any(self, what: str) -> None:
        if not self.found:
            return
        first = self.found[0]
        listed = "; ".join(f"{e['field']}: {e['detail']}" for e in self.found)
        n = len(self.found)
        raise InvalidInput(
            f"{n} {what} field{'s' if n > 1 else ''} invalid: {listed}",
            field=first["field"],
            extra={"errors": self.found},
        )


# --- definitions: a field spec as an admin writes it ----------------------------------------


def parse_fields(raw: Any, path: str) -> tuple[FieldSpec, ...]:
    """Field specs from a definition's JSON; an error names the spec at fault (`path[i].key`)."""
    if not isinstance(raw, list):
        raise InvalidInput(f"{path} must be a list of fields", field=path)
    specs: list[FieldSpec] = []
    for i, item in enumerate(raw):
        specs.append(_parse_field(item, f"{path}[{i}]"))
    names = [s.name for s in specs]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise InvalidInput(f"field {name!r} appears twice", field=f"{path}[{i}].name")
    return tuple(specs)


def _bad(where: str, detail: str) -> InvalidInput:
    return InvalidInput(f"{where}: {detail}", field=where)


def _parse_field(item: Any, where: str) -> FieldSpec:
    if not isinstance(item, Mapping):
        raise _bad(where, "a field must be an object")
    known = {"name", "type", *_DEFAULTS}
    for key in item:
        if key not in known:
            raise _bad(f"{where}.{key}", f"unknown property (known: {', '.join(sorted(known))})")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _bad(f"{where}.name", "1-40 lowercase letters, digits or '_', starting with a letter")
    kind = item.get("type")
    if kind not in FIELD_TYPES:
        raise _bad(f"{where}.type", f"must be one of {', '.join(FIELD_TYPES)}")
    spec: dict[str, Any] = {"name": name, "type": kind}
    label = item.get("label", "")
    if not isinstance(label, str) or len(label) > 100:
        raise _bad(f"{where}.label", "a text of at most 100 characters")
    spec["label"] = label
    required = item.get("required", False)
    if not isinstance(required, bool):
        raise _bad(f"{where}.required", "true or false")
    spec["required"] = required
    allowed = _PROPERTIES[kind]
    for key in item:
        if key not in ("name", "type", "label", "required") and key not in allowed:
            raise _bad(f"{where}.{key}", f"does not apply to a {kind} field")
    if kind in ("number", "money"):
        for key in ("minimum", "maximum"):
            if key in item:
                spec[key] = _decimal_bound(item[key], f"{where}.{key}", whole=kind == "money")
        if "integer" in item:
            if not isinstance(item["integer"], bool):
                raise _bad(f"{where}.integer", "true or false")
            spec["integer"] = item["integer"]
        lo, hi = spec.get("minimum"), spec.get("maximum")
        if lo is not None and hi is not None and lo > hi:
            raise _bad(f"{where}.minimum", "must not be above maximum")
    elif kind == "text":
        if "pattern" in item:
            pattern = item["pattern"]
            if not isinstance(pattern, str) or not 0 < len(pattern) <= 200:
                raise _bad(f"{where}.pattern", "a regular expression of 1-200 characters")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise _bad(f"{where}.pattern", f"not a regular expression ({exc})") from None
            spec["pattern"] = pattern
        if "max_length" in item:
            spec["max_length"] = _whole(item["max_length"], f"{where}.max_length", 1, MAX_TEXT)
    elif kind == "enum":
        values = item.get("values")
        if (
            not isinstance(values, list)
            or not values
            or any(not isinstance(v, str) or not v.strip() or len(v) > 100 for v in values)
            or len(set(values)) != len(values)
        ):
            raise _bad(f"{where}.values", "a list of distinct, non-empty texts")
        spec["values"] = tuple(values)
    elif kind == "date":
        for key, attr in (("earliest", "earliest"), ("latest", "latest")):
            if key in item:
                spec[attr] = _date(item[key], f"{where}.{key}")
        if spec.get("earliest") and spec.get("latest") and spec["earliest"] > spec["latest"]:
            raise _bad(f"{where}.earliest", "must not be after latest")
    elif kind == "photo" and "max_items" in item:
        spec["max_items"] = _whole(item["max_items"], f"{where}.max_items", 1, MAX_PHOTOS)
    return FieldSpec(**spec)


_PROPERTIES: dict[str, tuple[str, ...]] = {
    "text": ("pattern", "max_length"),
    "number": ("minimum", "maximum", "integer"),
    "money": ("minimum", "maximum"),
    "date": ("earliest", "latest"),
    "enum": ("values",),
    "phone": (),
    "photo": ("max_items",),
    "signature": (),
}


def _whole(value: Any, where: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _bad(where, f"a whole number from {lo} to {hi}")
    return value


def _decimal_bound(value: Any, where: str, whole: bool) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _bad(where, "a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise _bad(where, "a number") from None
    if not number.is_finite() or (whole and number != number.to_integral_value()):
        raise _bad(where, "a whole number of fen" if whole else "a finite number")
    return number


def _day(value: Any) -> date | None:
    """A calendar date written YYYY-MM-DD, nothing looser (no times, no week dates)."""
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _date(value: Any, where: str) -> date:
    day = _day(value)
    if day is None:
        raise _bad(where, "a date as YYYY-MM-DD")
    return day


# --- submissions: a form as a transition carries it ------------------------------------------


def validate_form(specs: Sequence[FieldSpec], data: Any, prefix: str = "form") -> dict[str, Any]:
    """The normalised values of a submitted form, or InvalidInput listing every bad field
    (`extra["errors"]`: [{field, detail}], `field`: the first). Unknown fields are refused:
    a typo must not silently drop what the installer entered."""
    errors = FormErrors(prefix)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{prefix} must be an object of field values", field=prefix)
    by_name = {s.name: s for s in specs}
    for key in data:
        if key not in by_name:
            errors.add(str(key), "no such field in this step's form")
    out: dict[str, Any] = {}
    for spec in specs:
        value = data.get(spec.name)
        if value is None or (isinstance(value, str) and not value.strip()) or value == []:
            if spec.required:
                errors.add(spec.name, "required")
            continue
        try:
            out[spec.name] = _CHECKS[spec.type](spec, value)
        except ValueError as exc:
            errors.add(spec.name, str(exc))
    errors.raise_any(prefix)
    return out


def _text(spec: FieldSpec, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be text")
    text = value.strip()
    if len(text) > spec.max_length:
        raise ValueError(f"at most {spec.max_length} characters")
    if spec.pattern is not None and not re.fullmatch(spec.pattern, text):
        raise ValueError("does not have the required format")
    return text


def _in_range(spec: FieldSpec, number: Decimal, unit: str = "") -> None:
    if spec.minimum is not None and number < spec.minimum:
        raise ValueError(f"must be at least {_plain(spec.minimum)}{unit}")
    if spec.maximum is not None and number > spec.maximum:
        raise ValueError(f"must be at most {_plain(spec.maximum)}{unit}")


def _number(spec: FieldSpec, value: Any) -> int | str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("must be a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("must be a number") from None
    if not number.is_finite():
        raise ValueError("must be a finite number")
    whole = number == number.to_integral_value()
    if spec.integer and not whole:
        raise ValueError("must be a whole number")
    _in_range(spec, number)
    # Whole numbers as ints; others as Decimal strings, so no float rounding enters an event.
    return int(number) if whole else str(number.normalize())


def _money(spec: FieldSpec, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number of fen (0.01 CNY)")
    _in_range(spec, Decimal(value), " fen")
    return value


def _date_value(spec: FieldSpec, value: Any) -> str:
    day = _day(value)
    if day is None:
        raise ValueError("must be a date as YYYY-MM-DD")
    if spec.earliest is not None and day < spec.earliest:
        raise ValueError(f"must be on or after {spec.earliest.isoformat()}")
    if spec.latest is not None and day > spec.latest:
        raise ValueError(f"must be on or before {spec.latest.isoformat()}")
    return day.isoformat()


def _enum(spec: FieldSpec, value: Any) -> str:
    if value not in spec.values:
        raise ValueError(f"must be one of {', '.join(spec.values)}")
    return str(value)


def normalise_mobile(value: str) -> str:
    digits = re.sub(r"[\s\-]", "", value)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    return digits


def _phone(spec: FieldSpec, value: Any) -> str:
    if not isinstance(value, str) or not _MOBILE.match(normalise_mobile(value)):
        raise ValueError("must be a mainland China mobile number (11 digits, 1[3-9]…)")
    return normalise_mobile(value)


def _media(value: Any) -> str:
    if not isinstance(value, str) or not _MEDIA_REF.match(value):
        raise ValueError("must be a media reference (8-256 letters, digits, '_-./:')")
    return value


def _photo(spec: FieldSpec, value: Any) -> list[str]:
    refs = value if isinstance(value, list) else [value]
    if len(refs) > spec.max_items:
        raise ValueError(f"at most {spec.max_items} photo{'s' if spec.max_items > 1 else ''}")
    return [_media(r) for r in refs]


def _signature(spec: FieldSpec, value: Any) -> str:
    return _media(value)


_CHECKS = {
    "text": _text,
    "number": _number,
    "money": _money,
    "date": _date_value,
    "enum": _enum,
    "phone": _phone,
    "photo": _photo,
    "signature": _signature,
}

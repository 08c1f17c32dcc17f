"""Checks a regex candidate must pass to count as an entity: what a pattern alone cannot say.

Each validator takes the candidate's match and the entity's options from config/pii_policy.yaml and returns
the span to report (sometimes shorter than the match, e.g. an IP address without an impossible /prefix), or
None when the candidate is not the entity.
"""

from __future__ import annotations

import calendar
import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any

Span = tuple[int, int]
Validator = Callable[[re.Match, Mapping[str, Any]], Span | None]
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def digits_of(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def luhn_valid(number: str) -> bool:
    """The Luhn (mod 10) checksum of a string of digits."""
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def parse_ranges(spec: str) -> list[tuple[str, str]]:
    """'51-55 2221-2720 4' -> [('51', '55'), ('2221', '2720'), ('4', '4')]: inclusive ranges of digit strings."""
    ranges = []
    for token in spec.replace(",", " ").split():
        low, _, high = token.partition("-")
        ranges.append((low, high or low))
    return ranges


def in_ranges(value: str, ranges: list[tuple[str, str]]) -> bool:
    """Whether the leading digits of `value` fall in one of the ranges (compared at each range's width)."""
    return any(low <= value[: len(low)] <= high for low, high in ranges)


def card(match: re.Match, options: Mapping[str, Any]) -> Span | None:
    """Payment card: Luhn-valid, with a length the issuer of its leading digits uses."""
    number = digits_of(match.group("number"))
    if not luhn_valid(number):
        return None
    for prefixes, lengths in options.get("issuers", {}).items():
        if in_ranges(number, parse_ranges(str(prefixes))) and in_ranges(str(len(number)), parse_ranges(str(lengths))):
            return match.span()
    return None


def ssn(match: re.Match, options: Mapping[str, Any]) -> Span | None:
    """US Social Security number: never issued areas (000, 666, 900-999), group 00 or serial 0000 are out."""
    area, group, serial = match.group("area"), match.group("group"), match.group("serial")
    number = area + group + serial
    if area in ("000", "666") or area >= "900" or group == "00" or serial == "0000":
        return None
    if len(set(number)) == 1 or number in {str(v) for v in options.get("invalid", [])}:
        return None
    return match.span()


def nanp_valid(ten_digits: str) -> bool:
    """North American numbering plan: area code and exchange start with 2-9; N11 codes are not areas."""
    area, exchange = ten_digits[:3], ten_digits[3:6]
    return area[0] >= "2" and area[1:] != "11" and exchange[0] >= "2"


def phone(match: re.Match, options: Mapping[str, Any]) -> Span | None:
    """US numbers by the numbering plan; international (+...) numbers by E.164's digit count."""
    groups = match.groupdict()
    digits = digits_of(match.group(0))
    if groups.get("exchange") is not None:
        country = groups.get("country")
        local = digits[-10:]
        if country not in (None, "1") and not groups.get("plus") and len(country) < 2:
            return None  # a lone digit before a dash is no country code, e.g. "5-415-555-0132"
        return match.span() if nanp_valid(local) else None
    if digits.startswith("1"):
        return match.span() if len(digits) == 11 and nanp_valid(digits[1:]) else None
    low, high = int(options.get("min_digits", 8)), int(options.get("max_digits", 15))
    return match.span() if low <= len(digits) <= high else None


EMAIL_LOCAL = re.compile(r"[^.](?:.*[^.])?")


def email(match: re.Match, options: Mapping[str, Any]) -> Span | None:
    """An address whose local part neither starts nor ends with a dot nor holds two in a row."""
    local = match.group("local")
    if ".." in local or not EMAIL_LOCAL.fullmatch(local) or len(local) > 64:
        return None
    return match.span()


def ip(match: re.Match, options: Mapping[str, Any]) -> Span | None:
    """IPv4/IPv6 as Python's ipaddress parses them; a /prefix too long for the family is left out."""
    text = match.group("address")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if options.get("skip_unspecified") and address.version == 6 and address.is_unspecified:
        return None
    prefix = match.group("prefix")
    if prefix is not None and int(prefix) > address.max_prefixlen:
        return match.start(), match.end("address")
    return match.span()


def _year(text: str, options: Mapping[str, Any]) -> int | None:
    year = int(text)
    if len(text) == 2:
        return year + (2000 if year < 50 else 1900)
    low, high = (int(v) for v in str(options.get("years", "1900-2099")).split("-"))
    return year if low <= year <= high else None


def _is_date(year: int | None, month: int, day: int) -> bool:
    if year is None or not 1 <= month <= 12:
        return False
    return 1 <= day <= calendar.monthrange(year, month)[1]


def _month(name: str) -> int:
    return MONTHS.index(name[:3].lower()) + 1


def date(match: re.Match, options: Mapping[str, Any]) -> Span | None:
    """A real calendar date: numeric day-month orders are tried both ways (M/D and D/M)."""
    g = match.groupdict()
    if g.get("a") is not None:
        year, a, b = _year(g["y"], options), int(g["a"]), int(g["b"])
        valid = _is_date(year, a, b) or _is_date(year, b, a)
    elif g.get("mon") is not None and g.get("dy") is not None:
        value = g["dy"]
        month = _month(g["mon"])
        valid = _year(value, options) is not None if len(value) == 4 else _is_date(2000, month, int(value))
    elif g.get("mon") is not None:
        year = _year(g["y"], options) if g.get("y") else 2000
        valid = _is_date(year, _month(g["mon"]), int(g["d"]))
    else:
        valid = _is_date(_year(g["y"], options), int(g["m"]), int(g["d"]))
    return match.span() if valid else None


def always(match: re.Match, options: Mapping[str, Any]) -> Span | None:
    """No check beyond the pattern (custom entities)."""
    return match.span()


VALIDATORS: dict[str, Validator] = {
    "card": card,
    "ssn": ssn,
    "phone": phone,
    "email": email,
    "ip": ip,
    "date": date,
    "none": always,
}

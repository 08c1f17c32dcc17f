"""Vectorised formatting of numpy values into Arrow string arrays (no per-row Python)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

STR = pa.string()
NULL = pa.scalar(None, STR)

# Date formats, by code (the order of the manifest's "date_formats" counts).
DATE_FORMATS = ("iso", "m/d/yyyy", "mm/dd/yyyy")
PHONE_FORMATS = ("ddd-ddd-dddd", "(ddd) ddd-dddd", "ddd.ddd.dddd", "+1 ddd ddd dddd", "dddddddddd")


def join(*parts: pa.Array | str) -> pa.Array:
    """Concatenate string arrays and literal strings element-wise (a null part gives null)."""
    return pc.binary_join_element_wise(*parts, "")


def ints(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), STR)


def padded(values: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(ints(values), width=width, padding="0")


def lookup(vocab: Sequence[str], codes: np.ndarray) -> pa.Array:
    """Vocabulary values at the given integer codes."""
    return pa.array(list(vocab), STR).take(pa.array(np.asarray(codes, dtype=np.int64)))


def choose(codes: np.ndarray, options: Sequence[pa.Array]) -> pa.Array:
    """Per row, the value of ``options[codes[i]]``."""
    return pc.choose(pa.array(np.asarray(codes, dtype=np.int8)), *options)


def with_nulls(arr: pa.Array, missing: np.ndarray) -> pa.Array:
    """Replace the values where ``missing`` is true by null."""
    if not missing.any():
        return arr
    return pc.if_else(pa.array(missing), NULL, arr)


def decimal(scaled: np.ndarray, digits: int, integral: np.ndarray | None = None) -> pa.Array:
    """Fixed-point text from integers scaled by ``10**digits`` (e.g. 8850, 2 → "88.50").

    Where ``integral`` is true and the value has no fraction, the text is the bare integer ("88").
    """
    scaled = np.asarray(scaled, dtype=np.int64)
    unit = 10**digits
    mag = np.abs(scaled)
    sign = pa.array(np.where(scaled < 0, "-", ""), STR)
    text = join(sign, ints(mag // unit), ".", padded(mag % unit, digits))
    if integral is None:
        return text
    bare = integral & (mag % unit == 0)
    if not bare.any():
        return text
    return pc.if_else(pa.array(bare), join(sign, ints(mag // unit)), text)


def civil(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(year, month, day) arrays from days since 1970-01-01."""
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    months = d.astype("datetime64[M]")
    year = months.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (d - months).astype(np.int64) + 1
    return year, month, day


def dates(days: np.ndarray, fmt_codes: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    """Dates as text, each in the format ``DATE_FORMATS[fmt_codes[i]]``; null where ``missing``."""
    days = np.asarray(days, dtype=np.int64)
    safe = np.where(missing, 0, days) if missing is not None else days
    y, m, d = civil(safe)
    iso = pc.cast(pa.array(safe.astype(np.int32), pa.date32()), STR)
    short = join(ints(m), "/", ints(d), "/", ints(y))
    long = join(padded(m, 2), "/", padded(d, 2), "/", ints(y))
    out = choose(fmt_codes, [iso, short, long])
    return with_nulls(out, missing) if missing is not None else out


def timestamps(seconds: np.ndarray) -> pa.Array:
    """ISO timestamps ``YYYY-MM-DDTHH:MM:SS`` from seconds since the epoch."""
    ts = pa.array(np.asarray(seconds, dtype=np.int64), pa.timestamp("s"))
    return pc.replace_substring(pc.cast(ts, STR), " ", "T")


def phones(area: np.ndarray, exchange: np.ndarray, line: np.ndarray, fmt_codes: np.ndarray) -> pa.Array:
    """US phone numbers in the five ``PHONE_FORMATS``."""
    a, e, n = ints(area), ints(exchange), padded(line, 4)
    options = [
        join(a, "-", e, "-", n),
        join("(", a, ") ", e, "-", n),
        join(a, ".", e, ".", n),
        join("+1 ", a, " ", e, " ", n),
        join(a, e, n),
    ]
    return choose(fmt_codes, options)


def ssns(area: np.ndarray, group: np.ndarray, serial: np.ndarray) -> pa.Array:
    return join(padded(area, 3), "-", padded(group, 2), "-", padded(serial, 4))

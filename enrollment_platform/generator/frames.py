"""Column frames (a dict of equally long numpy arrays) and value samplers shared by the datasets.

A frame holds *typed* values (codes into the vocabulary, days, seconds, scaled integers) so that defects
can be injected arithmetically; each dataset module turns its frame into Arrow text at the end.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import fmt
from .names import (
    AREA_CODES,
    EMAIL_DOMAINS_STUDENT,
    FIRST_NAMES_FEMALE,
    FIRST_NAMES_MALE,
    LAST_NAMES,
    PII_NOTES,
)

Frame = dict[str, np.ndarray]

FIRST_NAMES = FIRST_NAMES_MALE + FIRST_NAMES_FEMALE
DAY = 86_400
NO_NOTE = -1
PII_NOTE_BASE = 1000  # note codes >= this are PII_NOTES[code - PII_NOTE_BASE]


def day(iso: str) -> int:
    """Days since 1970-01-01 of an ISO date."""
    return int(np.datetime64(iso, "D").astype(np.int64))


def take(frame: Frame, idx: np.ndarray) -> Frame:
    return {k: v[idx] for k, v in frame.items()}


def concat(*frames: Frame) -> Frame:
    keys = frames[0].keys()
    return {k: np.concatenate([f[k] for f in frames]) for k in keys}


def size(frame: Frame) -> int:
    return len(next(iter(frame.values())))


def categorical(rng: np.random.Generator, n: int, probs: list[float]) -> np.ndarray:
    return rng.choice(len(probs), size=n, p=np.asarray(probs) / sum(probs)).astype(np.int64)


def first_names(rng: np.random.Generator, gender: np.ndarray) -> np.ndarray:
    """Codes into FIRST_NAMES matching gender codes (0 M, 1 F, 2 X: either list)."""
    n_m, n_f = len(FIRST_NAMES_MALE), len(FIRST_NAMES_FEMALE)
    male = rng.integers(0, n_m, len(gender))
    female = n_m + rng.integers(0, n_f, len(gender))
    either = rng.integers(0, n_m + n_f, len(gender))
    return np.select([gender == 0, gender == 1], [male, female], either)


def phone_parts(rng: np.random.Generator, n: int, prefix: str) -> Frame:
    return {
        f"{prefix}area": np.asarray(AREA_CODES, dtype=np.int64)[rng.integers(0, len(AREA_CODES), n)],
        f"{prefix}exch": rng.integers(201, 1000, n),
        f"{prefix}line": rng.integers(0, 10_000, n),
        f"{prefix}fmt": rng.integers(0, len(fmt.PHONE_FORMATS), n),
    }


def ssn_parts(rng: np.random.Generator, n: int, prefix: str) -> Frame:
    """Valid-looking SSN parts: area 001-665 or 667-899, group 01-99, serial 0001-9999."""
    area = rng.integers(1, 899, n)  # 1..898, shifted past 666 below -> 1..665, 667..899
    area = np.where(area >= 666, area + 1, area)
    return {
        f"{prefix}area": area,
        f"{prefix}group": rng.integers(1, 100, n),
        f"{prefix}serial": rng.integers(1, 10_000, n),
    }


def note_parts(rng: np.random.Generator, n: int, n_plain: int, plain_rate: float, pii_rate: float) -> Frame:
    """Note codes (none, a plain sentence, or a PII sentence) plus the values a PII sentence quotes."""
    u = rng.random(n)
    kind = np.full(n, NO_NOTE, dtype=np.int64)
    pii = u < pii_rate
    plain = (u >= pii_rate) & (u < pii_rate + plain_rate)
    kind[plain] = rng.integers(0, n_plain, int(plain.sum()))
    kind[pii] = PII_NOTE_BASE + rng.integers(0, len(PII_NOTES), int(pii.sum()))
    frame = {"note": kind}
    frame |= phone_parts(rng, n, "note_phone_")
    frame |= ssn_parts(rng, n, "note_ssn_")
    frame["note_first"] = rng.integers(0, len(FIRST_NAMES), n)
    frame["note_last"] = rng.integers(0, len(LAST_NAMES), n)
    frame["note_domain"] = rng.integers(0, len(EMAIL_DOMAINS_STUDENT), n)
    return frame


def notes_text(frame: Frame, plain_vocab: list[str]) -> pa.Array:
    """The notes column: null (empty) for most rows, else a sentence (some quoting a phone/SSN/email)."""
    kind = frame["note"]
    n = len(kind)
    out = pa.nulls(n, fmt.STR)
    plain = (kind >= 0) & (kind < PII_NOTE_BASE)
    if plain.any():
        out = pc.if_else(pa.array(plain), fmt.lookup(plain_vocab, np.where(plain, kind, 0)), out)
    pii_code = np.where(kind >= PII_NOTE_BASE, kind - PII_NOTE_BASE, -1)
    if (pii_code >= 0).any():
        phone = fmt.phones(
            frame["note_phone_area"],
            frame["note_phone_exch"],
            frame["note_phone_line"],
            frame["note_phone_fmt"],
        )
        ssn = fmt.ssns(frame["note_ssn_area"], frame["note_ssn_group"], frame["note_ssn_serial"])
        email = pc.utf8_lower(
            fmt.join(
                fmt.lookup(FIRST_NAMES, frame["note_first"]),
                ".",
                fmt.lookup(LAST_NAMES, frame["note_last"]),
                "@",
                fmt.lookup(EMAIL_DOMAINS_STUDENT, frame["note_domain"]),
            )
        )
        values = {"phone": phone, "ssn": ssn, "email": email}
        for i, (prefix, what, suffix) in enumerate(PII_NOTES):
            mask = pii_code == i
            if mask.any():
                out = pc.if_else(pa.array(mask), fmt.join(prefix, values[what], suffix), out)
    return out


def has_pii_note(frame: Frame) -> np.ndarray:
    return frame["note"] >= PII_NOTE_BASE


def seconds_between(rng: np.random.Generator, n: int, start: str, end: str) -> np.ndarray:
    return day(start) * DAY + rng.integers(0, (day(end) - day(start)) * DAY, n)


def date_format_codes(rng: np.random.Generator, n: int, shares: dict[str, float]) -> np.ndarray:
    return categorical(rng, n, [shares[name] for name in fmt.DATE_FORMATS])

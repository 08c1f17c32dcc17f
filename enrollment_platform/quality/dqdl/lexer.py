"""Tokenizer for DQDL.

Token kinds: ``STRING`` (double-quoted, ``value`` unescaped), ``NUMBER``, ``IDENT`` (unquoted names and
keywords; DQDL keywords are not reserved words, the parser decides by context), ``VARIABLE`` (``$name``,
``value`` is the name), the punctuation ``[ ] ( ) { } , : = != > >= < <= + - * /`` (kind is the text
itself) and ``EOF``. ``#`` starts a comment that runs to the end of the line (outside strings).

Inside a string, ``\\"`` stands for ``"`` and ``\\\\`` for ``\\``; any other backslash is kept as written,
so regular expressions such as ``"\\d{3}"`` need no doubling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from enrollment_platform.quality.dqdl.ast import DQDLSyntaxError

STRING = "STRING"
NUMBER = "NUMBER"
IDENT = "IDENT"
VARIABLE = "VARIABLE"
EOF = "EOF"

_PUNCTUATION = ("!=", ">=", "<=", "[", "]", "(", ")", "{", "}", ",", ":", "=", ">", "<", "+", "-", "*", "/")
_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Token:
    kind: str
    text: str  # exactly as written
    value: str  # unescaped string, variable name, or the text
    line: int  # 1-based
    column: int  # 1-based
    start: int  # offset of the first character
    end: int  # offset after the last character

    def describe(self) -> str:
        if self.kind == EOF:
            return "the end of the text"
        return f"`{self.text}`"


def unescape(body: str) -> str:
    """Unescape the inside of a DQDL string: \\" -> " and \\\\ -> \\; other backslashes stay."""
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] in ('"', "\\"):
            out.append(body[i + 1])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def quote(value: str) -> str:
    """The DQDL string literal for ``value`` (the inverse of the lexer's unescaping, minimal escaping)."""
    out: list[str] = []
    for i, ch in enumerate(value):
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            nxt = value[i + 1] if i + 1 < len(value) else None
            # A backslash must be doubled only where it would otherwise escape the next character
            # (or the closing quote).
            out.append("\\\\" if nxt in (None, '"', "\\") else "\\")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


class Lexer:
    def __init__(self, text: str, source: str = "<string>"):
        self.text = text
        self.source = source
        self._line_starts = [0]
        for m in re.finditer("\n", text):
            self._line_starts.append(m.end())

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        lo, hi = 0, len(self._line_starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._line_starts[mid] <= offset:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, offset - self._line_starts[lo] + 1

    def error(self, message: str, offset: int) -> DQDLSyntaxError:
        line, column = self.position(offset)
        return DQDLSyntaxError(message, line, column, self.source)

    def _token(self, kind: str, start: int, end: int, value: str | None = None) -> Token:
        line, column = self.position(start)
        text = self.text[start:end]
        return Token(kind, text, text if value is None else value, line, column, start, end)

    def tokens(self) -> list[Token]:
        text = self.text
        n = len(text)
        i = 0
        out: list[Token] = []
        while i < n:
            ch = text[i]
            if ch in " \t\r\n\f\v\ufeff":
                i += 1
                continue
            if ch == "#":
                j = text.find("\n", i)
                i = n if j < 0 else j
                continue
            if ch == '"':
                j = i + 1
                while j < n and text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
                if j >= n:
                    raise self.error('this string has no closing `"`', i)
                out.append(self._token(STRING, i, j + 1, unescape(text[i + 1 : j])))
                i = j + 1
                continue
            if ch == "$":
                m = _IDENT.match(text, i + 1)
                if not m:
                    raise self.error("`$` must be followed by a variable name, e.g. $allowed_codes", i)
                out.append(self._token(VARIABLE, i, m.end(), m.group()))
                i = m.end()
                continue
            m = _NUMBER.match(text, i)
            if m:
                out.append(self._token(NUMBER, i, m.end()))
                i = m.end()
                continue
            m = _IDENT.match(text, i)
            if m:
                out.append(self._token(IDENT, i, m.end()))
                i = m.end()
                continue
            for p in _PUNCTUATION:
                if text.startswith(p, i):
                    out.append(self._token(p, i, i + len(p)))
                    i += len(p)
                    break
            else:
                if ch == "'":
                    raise self.error("strings are written in double quotes in DQDL, not single quotes", i)
                if ch == "!":
                    raise self.error("unexpected `!`; the not-equal operator is `!=`", i)
                raise self.error(f"unexpected character `{ch}`", i)
        # The end of the text is reported where the last token ends, so positions stay inside the text.
        end = out[-1].end if out else 0
        out.append(self._token(EOF, end, end, ""))
        return out


def tokenize(text: str, source: str = "<string>") -> list[Token]:
    return Lexer(text, source).tokens()

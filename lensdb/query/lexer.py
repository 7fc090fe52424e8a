"""Tokens of the count query language.

Kinds: NUM (a plain number), DUR (a duration such as `10s`, `1m30s`, `250ms`, in
seconds), IDENT (words; keywords are words matched case-insensitively by the parser),
STR (a quoted string, `'...'` or `"..."`, with the quote doubled inside), OP (`= == !=
<> < <= > >=`), and the punctuation `( ) , * [ ]`. Whitespace of any kind separates tokens.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from lensdb.errors import QueryError

UNITS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}
MAX_QUERY_CHARS = 20_000

_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")
_WORD = re.compile(r"[^\W\d](?:[\w\-.]*\w)?")
_LETTERS = re.compile(r"[A-Za-z]+")
_OPS = ("<=", ">=", "!=", "<>", "==", "=", "<", ">")
_PUNCT = {"(": "LPAREN", ")": "RPAREN", ",": "COMMA", "*": "STAR", "[": "LBRACKET",
          "]": "RBRACKET"}


@dataclass(frozen=True)
class Token:
    kind: str  # NUM DUR IDENT STR OP LPAREN RPAREN COMMA STAR LBRACKET RBRACKET END
    text: str  # the source text of the token (for STR: the unquoted value)
    pos: int  # offset of its first character in the query
    value: float | None = None  # NUM and DUR: the number (DUR in seconds)

    @property
    def number(self) -> float:
        """The value of a NUM or DUR token (the lexer sets it for those)."""
        if self.value is None:
            raise ValueError(f"the {self.kind} token {self.text!r} has no number")
        return self.value

    def is_word(self, *words: str) -> bool:
        return self.kind == "IDENT" and self.text.lower() in words

    def describe(self) -> str:
        if self.kind == "END":
            return "the end of the query"
        if self.kind == "STR":
            return f"the string {show(self.text)}"
        return show(self.text)


def show(text: str, limit: int = 24) -> str:
    """A short, one-line, quoted rendering of user text for an error message."""
    cut = text if len(text) <= limit else text[:limit] + "..."
    shown = "".join(ch if ch.isprintable() and ch != "\\" else
                    ch.encode("unicode_escape").decode("ascii") for ch in cut)
    return "'" + shown.replace("'", "\\'") + "'"  # printable letters (é, 車) stay as typed


def display_text(text: str) -> str:
    """The query on one line, same length, for the caret line under it."""
    return "".join(" " if ch.isspace() or not ch.isprintable() else ch for ch in text)


def fail(message: str, text: str, pos: int) -> QueryError:
    return QueryError(message, display_text(text), max(0, min(pos, len(text))))


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_QUERY_CHARS:
        raise fail(f"the query is too long ({len(text)} characters, at most "
                   f"{MAX_QUERY_CHARS})", text[:80], 80)
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in _PUNCT:
            tokens.append(Token(_PUNCT[ch], ch, i))
            i += 1
            continue
        op = next((o for o in _OPS if text.startswith(o, i)), None)
        if op:
            tokens.append(Token("OP", {"<>": "!=", "==": "="}.get(op, op), i))
            i += len(op)
            continue
        if ch in "'\"":
            tok, i = _string(text, i)
            tokens.append(tok)
            continue
        m = _NUMBER.match(text, i)
        if m:
            tok, i = _number(text, i)
            tokens.append(tok)
            continue
        m = _WORD.match(text, i)
        if m:
            tokens.append(Token("IDENT", m.group(), i))
            i = m.end()
            continue
        raise fail(f"unexpected character {show(ch)}", text, i)
    tokens.append(Token("END", "", n))
    return tokens


def _string(text: str, start: int) -> tuple[Token, int]:
    quote, i, out = text[start], start + 1, []
    while i < len(text):
        if text[i] == quote:
            if text.startswith(quote * 2, i):
                out.append(quote)
                i += 2
                continue
            return Token("STR", "".join(out), start), i + 1
        out.append(text[i])
        i += 1
    raise fail("unterminated string: a closing quote is missing", text, start)


def _number(text: str, start: int) -> tuple[Token, int]:
    """A number, or a duration when a unit follows it directly (`10s`, `1m30s`)."""
    i, seconds, is_duration = start, 0.0, False
    while True:
        m = _NUMBER.match(text, i)
        if not m:
            break
        value = float(m.group())
        unit = _LETTERS.match(text, m.end())
        if unit is None:
            if is_duration:  # `1m30` is a mistake, not a number after a duration
                raise fail("expected a unit (ms, s, m or h) after the number", text, m.end())
            i = m.end()
            seconds = value
            break
        if unit.group().lower() not in UNITS:
            raise fail(f"unknown unit {show(unit.group())}; use ms, s, m or h", text, m.end())
        seconds += value * UNITS[unit.group().lower()]
        is_duration, i = True, unit.end()
    if i < len(text) and (text[i].isalnum() or text[i] in "_."):
        raise fail(f"unexpected character {show(text[i])} after a number", text, i)
    if not math.isfinite(seconds) or seconds > 1e15:
        raise fail("number too large", text, start)
    kind = "DUR" if is_duration else "NUM"
    return Token(kind, text[start:i], start, seconds), i

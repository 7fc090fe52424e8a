"""Recursive-descent parser: query text -> plan (see GRAMMAR).

Every error is a QueryError carrying the query and the offending position, and says
what was expected there.
"""

from __future__ import annotations

from lensdb.query import plan as p
from lensdb.query.lexer import Token, fail, tokenize

GRAMMAR = """\
query      := selection | aggregate
selection  := predicate [LIMIT int [GAP duration]]
aggregate  := agg {',' agg} [WHERE predicate] [BY (video | minute | hour | second | duration)]
agg        := (AVG | MIN | MAX | SUM) '(' count ')' | FRAMES | COUNT '(' '*' ')'
predicate  := conj {OR conj}
conj       := factor {AND factor}
factor     := NOT factor | '(' predicate ')' | atom
atom       := count op number
            | VIDEO ('=' | '!=') string | VIDEO [NOT] LIKE string
            | TIME BETWEEN duration AND duration | TIME op duration
count      := COUNT '(' class ['[' value ']'] ')'   class, value: words or a quoted string
                                           (`car[parked]`: cars of condition value parked)
op         := '=' | '==' | '!=' | '<>' | '<' | '<=' | '>' | '>='
duration   := number unit {number unit}   units ms, s, m, h (a bare number is seconds)
"""

MAX_DEPTH = 64
MAX_TERMS = 1000
_AGG_WORDS = ("avg", "min", "max", "sum")
_BUCKETS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}


def parse_query(text: str) -> p.Query:
    """Parse a full query: a selection or an aggregate."""
    return _Parser(text).query()


def parse_predicate(text: str) -> p.Predicate:
    """Parse a bare predicate (no LIMIT, no aggregates), e.g. for search filters."""
    parser = _Parser(text)
    pred = parser.predicate()
    parser.expect_end("AND, OR or the end of the filter")
    return pred


def parse_duration(text: str) -> float:
    """Seconds from a duration as the language writes it (`2s`, `1m30s`, `250ms`) or a
    plain number of seconds, e.g. for `--gap`."""
    parser = _Parser(text)
    seconds = parser.duration("a duration such as 2s or 1m30s")
    parser.expect_end("the end of the duration")
    return seconds  # never negative: the lexer has no minus sign


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0
        self.terms = 0

    # ---- helpers --------------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "END":
            self.i += 1
        return tok

    def error(self, expected: str, tok: Token | None = None):
        tok = tok or self.tok
        return fail(f"expected {expected}, found {tok.describe()}", self.text, tok.pos)

    def take_word(self, *words: str) -> bool:
        if self.tok.is_word(*words):
            self.advance()
            return True
        return False

    def expect_word(self, word: str, expected: str | None = None) -> Token:
        if not self.tok.is_word(word):
            raise self.error(expected or word.upper())
        return self.advance()

    def expect(self, kind: str, expected: str) -> Token:
        if self.tok.kind != kind:
            raise self.error(expected)
        return self.advance()

    def expect_end(self, expected: str) -> None:
        if self.tok.kind != "END":
            raise self.error(expected)

    # ---- query ----------------------------------------------------------------------------

    def query(self) -> p.Query:
        if self.tok.kind == "END":
            raise fail("empty query; try e.g. count(person) > 3", self.text, 0)
        if self.tok.is_word("frames", *_AGG_WORDS) or self._at_count_star():
            return self.aggregate()
        where = self.predicate()
        limit = gap = None
        if self.take_word("limit"):
            tok = self.expect("NUM", "a whole number after LIMIT")
            if tok.number != int(tok.number) or tok.number < 1 or "." in tok.text:
                raise fail("LIMIT needs a whole number of at least 1", self.text, tok.pos)
            limit = int(tok.number)
            if self.take_word("gap"):
                gap = self.duration("a duration after GAP, e.g. 5s")
        elif self.tok.is_word("gap"):
            raise fail("GAP goes after LIMIT N (the N moments at least that far apart, e.g. "
                       "LIMIT 10 GAP 5s); to merge moments closer than a duration, use --gap",
                       self.text, self.tok.pos)
        self.expect_end("AND, OR, LIMIT or the end of the query")
        return p.Selection(where, limit, gap)

    def _at_count_star(self) -> bool:
        t = self.tokens
        return (self.tok.is_word("count") and t[self.i + 1].kind == "LPAREN"
                and t[self.i + 2].kind == "STAR")

    def aggregate(self) -> p.Aggregate:
        aggs = [self.agg()]
        while self.tok.kind == "COMMA":
            self.advance()
            aggs.append(self.agg())
        where = by = None
        if self.take_word("where"):
            where = self.predicate()
        if self.take_word("by"):
            by = self.group_by()
        self.expect_end("WHERE, BY or the end of the query" if where is None and by is None
                        else "AND, OR, BY or the end of the query" if by is None
                        else "the end of the query")
        return p.Aggregate(tuple(dict.fromkeys(aggs)), where, by)

    def agg(self) -> p.Agg:
        if self.take_word("frames"):
            return p.Agg("frames")
        if self._at_count_star():
            self.i += 3
            self.expect("RPAREN", "')' after count(*")
            return p.Agg("frames")
        if not self.tok.is_word(*_AGG_WORDS):
            raise self.error("avg, min, max, sum or frames")
        func = self.advance().text.lower()
        self.expect("LPAREN", f"'(' after {func}")
        ref = self.count_ref()
        self.expect("RPAREN", f"')' to close {func}(")
        return p.Agg(func, ref)

    def group_by(self) -> p.GroupBy:
        tok = self.tok
        if self.take_word("video"):
            return p.GroupBy("video")
        if tok.kind == "IDENT" and tok.text.lower() in _BUCKETS:
            self.advance()
            return p.GroupBy("time", _BUCKETS[tok.text.lower()])
        if tok.kind in ("DUR", "NUM"):
            seconds = self.duration("")
            if seconds <= 0:
                raise fail("a time bucket must be longer than 0s", self.text, tok.pos)
            return p.GroupBy("time", seconds)
        raise self.error("video, second, minute, hour or a duration such as 10s after BY")

    # ---- predicates -----------------------------------------------------------------------

    def predicate(self) -> p.Predicate:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise fail(f"the query nests deeper than {MAX_DEPTH} levels", self.text, self.tok.pos)
        items = [self.conj()]
        while self.take_word("or"):
            items.append(self.conj())
        self.depth -= 1
        return items[0] if len(items) == 1 else p.Or(tuple(items))

    def conj(self) -> p.Predicate:
        items = [self.factor()]
        while self.take_word("and"):
            items.append(self.factor())
        return items[0] if len(items) == 1 else p.And(tuple(items))

    def factor(self) -> p.Predicate:
        if self.tok.is_word("not"):
            self.advance()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise fail(f"the query nests deeper than {MAX_DEPTH} levels",
                           self.text, self.tok.pos)
            item = self.factor()
            self.depth -= 1
            return p.Not(item)
        if self.tok.kind == "LPAREN":
            self.advance()
            inner = self.predicate()
            self.expect("RPAREN", "')' or AND/OR")
            return inner
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise fail(f"the query has more than {MAX_TERMS} conditions", self.text, self.tok.pos)
        if self.tok.is_word("count"):
            return self.compare()
        if self.tok.is_word("video"):
            return self.video()
        if self.tok.is_word("time"):
            return self.time()
        raise self.error("count(CLASS), video, time, NOT or '('")

    def count_ref(self) -> p.CountRef:
        self.expect_word("count", "count(CLASS)")
        self.expect("LPAREN", "'(' after count")
        tok = self.tok
        if tok.kind == "STR":
            self.advance()
            if not tok.text.strip():
                raise fail("the class name is empty", self.text, tok.pos)
            name = tok.text
        else:
            words: list[str] = []
            while self.tok.kind in ("IDENT", "NUM") and (words or self.tok.kind == "IDENT"):
                words.append(self.advance().text)
            if not words:
                raise self.error("a class name, e.g. count(person)")
            name = " ".join(words)
        if self.tok.kind == "LBRACKET":  # a condition value: count(car[parked])
            self.advance()
            words = []
            while self.tok.kind in ("IDENT", "NUM", "STR"):
                words.append(self.advance().text)
            if not words:
                raise self.error("a condition value, e.g. count(car[parked])")
            self.expect("RBRACKET", "']' after the condition value")
            name = f"{name}[{' '.join(words)}]"
        self.expect("RPAREN", "')' after the class name")
        return p.CountRef(name, tok.pos + (1 if tok.kind == "STR" else 0))

    def compare(self) -> p.Compare:
        ref = self.count_ref()
        op = self.expect("OP", "a comparison (=, !=, <, <=, >, >=) after count(...)").text
        num = self.expect("NUM", "a number to compare the count with")
        return p.Compare(ref, op, float(num.number))

    def video(self) -> p.VideoMatch:
        self.advance()
        if self.tok.kind == "OP" and self.tok.text in ("=", "!="):
            op = self.advance().text
        elif self.take_word("like"):
            op = "LIKE"
        elif self.take_word("not"):
            self.expect_word("like", "LIKE after video NOT")
            op = "NOT LIKE"
        else:
            raise self.error("=, != or LIKE after video")
        tok = self.expect("STR", "a quoted video name, e.g. 'street.mp4'")
        return p.VideoMatch(op, tok.text)

    def time(self) -> p.Predicate:
        self.advance()
        if self.take_word("between"):
            low_tok = self.tok
            low = self.duration("a duration after BETWEEN, e.g. 10s")
            self.expect_word("and", "AND between the two durations")
            high = self.duration("a duration after AND, e.g. 2m")
            if high < low:
                raise fail("the range is empty: the first duration is larger than the second",
                           self.text, low_tok.pos)
            return p.TimeRange(low, high)
        if self.tok.kind == "OP":
            op = self.advance().text
            return p.TimeCompare(op, self.duration("a duration, e.g. 30s"))
        raise self.error("BETWEEN or a comparison after time")

    def duration(self, expected: str) -> float:
        tok = self.tok
        if tok.kind not in ("DUR", "NUM"):
            raise self.error(expected or "a duration such as 10s")
        self.advance()
        return float(tok.number)

"""SOSL and SOQL as far as the Salesforce sandbox understands them.

SOSL: ``FIND {term} [IN PHONE FIELDS] [RETURNING Obj(f, …), Obj …] [LIMIT n]``. The term
must escape the reserved characters ``? & | ! { } [ ] ( ) ^ ~ * : \\ " ' + -`` with a
backslash, as on Salesforce; an unescaped one is a 400 ``MALFORMED_SEARCH``.

SOQL: ``SELECT f, … FROM Obj [WHERE c AND c …] [ORDER BY f [ASC|DESC]] [LIMIT n]`` where a
condition is ``f = v``, ``f != v``, ``f IN (v, …)`` or ``f LIKE 'pattern'`` and a value is a
quoted string (SOQL escapes), a number, ``true``, ``false`` or ``null``. Anything else is a
400 ``MALFORMED_QUERY``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from crmsync.sandbox.salesforce_schema import SfApiError, field_def, object_name

RESERVED = set("?&|!{}[]()^~*:\\\"'+-")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


@dataclass
class Sosl:
    term: str  # unescaped
    scope: str  # "PHONE" | "ALL"
    returning: list[tuple[str, list[str]]]
    limit: int = 2000


def parse_sosl(q: str) -> Sosl:
    match = re.match(r"\s*FIND\s*\{", q, re.IGNORECASE)
    if not match:
        raise SfApiError(400, "MALFORMED_SEARCH", "unexpected token: expecting FIND {search term}")
    term, i = [], match.end()
    while True:
        if i >= len(q):
            raise SfApiError(400, "MALFORMED_SEARCH", "missing '}' at end of the search term")
        ch = q[i]
        if ch == "\\" and i + 1 < len(q):
            term.append(q[i + 1])
            i += 2
            continue
        if ch == "}":
            break
        if ch in RESERVED:
            raise SfApiError(400, "MALFORMED_SEARCH", f"line 1:{i} mismatched character '{ch}' expecting '}}'")
        term.append(ch)
        i += 1
    text = "".join(term).strip()
    if len(text) < 2:
        raise SfApiError(400, "INVALID_SEARCH", "search term must be longer than one character")
    rest = q[i + 1 :]
    scope = "ALL"
    in_match = re.match(r"\s*IN\s+(\w+)\s+FIELDS", rest, re.IGNORECASE)
    if in_match:
        scope = in_match[1].upper()
        rest = rest[in_match.end() :]
    limit = 2000
    limit_match = re.search(r"\s+LIMIT\s+(\d+)\s*$", rest, re.IGNORECASE)
    if limit_match:
        limit = min(int(limit_match[1]), 2000)
        rest = rest[: limit_match.start()]
    returning: list[tuple[str, list[str]]] = []
    ret_match = re.match(r"\s*RETURNING\s+(.*)$", rest, re.IGNORECASE | re.DOTALL)
    if ret_match:
        for item in re.finditer(r"\s*(\w+)\s*(?:\(([^)]*)\))?\s*(,|$)", ret_match[1]):
            if not item[1]:
                continue
            names = [f.strip() for f in (item[2] or "Id").split(",") if f.strip()]
            if any(not re.fullmatch(r"\w+", n) for n in names):
                raise SfApiError(400, "MALFORMED_SEARCH", "the sandbox supports only field lists in RETURNING")
            returning.append((object_name(item[1]), names))
    elif rest.strip():
        raise SfApiError(400, "MALFORMED_SEARCH", f"unexpected token: {rest.strip().split()[0]}")
    if scope not in ("PHONE", "ALL"):
        raise SfApiError(400, "MALFORMED_SEARCH", f"the sandbox supports IN PHONE FIELDS only, not {scope}")
    return Sosl(text, scope, returning, limit)


def phone_hit(stored: str | None, term_digits: str) -> bool:
    """How the sandbox's search index finds a phone: the stored digits are the term's
    digits, end with them, or one run of digits in the stored value equals them."""
    if not stored or not term_digits:
        return False
    stored_digits = re.sub(r"\D", "", stored)
    return stored_digits.endswith(term_digits) or term_digits in re.findall(r"\d+", stored)


# -- SOQL ------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:('(?:[^'\\]|\\.)*')|([A-Za-z_][\w.]*)|(-?\d+(?:\.\d+)?)|(!=|<=|>=|[(),=<>*]))")


@dataclass
class Condition:
    field: str
    op: str  # "=", "!=", "IN", "LIKE"
    values: list[Any]


@dataclass
class Soql:
    fields: list[str]
    object: str
    where: list[Condition] = field(default_factory=list)
    order_by: str | None = None
    descending: bool = False
    limit: int | None = None


def _unquote(token: str) -> str:
    out, i, body = [], 0, token[1:-1]
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1] if body[i + 1] not in "%_" else "\\" + body[i + 1]))
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def _tokens(q: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(q.rstrip()):
        m = _TOKEN.match(q, pos)
        if not m or m.end() == pos:
            raise SfApiError(400, "MALFORMED_QUERY", f"unexpected character at position {pos}")
        pos = m.end()
        if m[1] is not None:
            tokens.append(("str", _unquote(m[1])))
        elif m[2] is not None:
            tokens.append(("word", m[2]))
        elif m[3] is not None:
            tokens.append(("num", float(m[3]) if "." in m[3] else int(m[3])))
        else:
            tokens.append(("op", m[4]))
    return tokens


def parse_soql(q: str) -> Soql:
    """The sandbox's SOQL subset: SELECT fields FROM object [WHERE a AND b …] [ORDER BY f [ASC|DESC]] [LIMIT n],
    with ``=``, ``!=``, ``IN (…)`` and ``LIKE``; anything else is Salesforce's ``MALFORMED_QUERY``."""
    return _SoqlParser(_tokens(q)).parse()


class _SoqlParser:
    """A recursive-descent reader over ``_tokens``' output, one clause per method."""

    def __init__(self, toks: list[tuple[str, Any]]) -> None:
        self.toks = toks
        self.pos = 0

    def parse(self) -> Soql:
        self.take("word", "SELECT")
        fields = [self.take("word")]
        while self.at_op(","):
            self.pos += 1
            fields.append(self.take("word"))
        self.take("word", "FROM")
        soql = Soql(fields, object_name(self.take("word")))
        if self.skip_word("WHERE"):
            self.where(soql)
        if self.skip_word("ORDER"):
            self.order_by(soql)
        if self.skip_word("LIMIT"):
            soql.limit = int(self.take("num"))
        if self.pos != len(self.toks):
            raise SfApiError(400, "MALFORMED_QUERY", f"unexpected token near position {self.pos}")
        for name in [*soql.fields, *(c.field for c in soql.where), *([soql.order_by] if soql.order_by else [])]:
            field_def(soql.object, name)
        return soql

    def where(self, soql: Soql) -> None:
        while True:
            soql.where.append(self.condition())
            if self.skip_word("AND"):
                continue
            if self.peek_word("OR"):
                raise SfApiError(400, "MALFORMED_QUERY", "the sandbox supports AND conditions only")
            return

    def condition(self) -> Condition:
        name = self.take("word")
        if self.skip_word("IN"):
            self.take("op", "(")
            values = [self.take_value()]
            while self.at_op(","):
                self.pos += 1
                values.append(self.take_value())
            self.take("op", ")")
            return Condition(name, "IN", values)
        if self.skip_word("LIKE"):
            return Condition(name, "LIKE", [self.take("str")])
        op = self.take("op")
        if op not in ("=", "!="):
            raise SfApiError(400, "MALFORMED_QUERY", f"the sandbox does not support the operator {op}")
        return Condition(name, op, [self.take_value()])

    def order_by(self, soql: Soql) -> None:
        self.take("word", "BY")
        soql.order_by = self.take("word")
        if self.peek_word("ASC", "DESC"):
            soql.descending = str(self.toks[self.pos][1]).upper() == "DESC"
            self.pos += 1

    def at_op(self, op: str) -> bool:
        return self.pos < len(self.toks) and self.toks[self.pos] == ("op", op)

    def peek_word(self, *words: str) -> bool:
        toks, pos = self.toks, self.pos
        return pos < len(toks) and toks[pos][0] == "word" and str(toks[pos][1]).upper() in words

    def skip_word(self, word: str) -> bool:
        if self.peek_word(word):
            self.pos += 1
            return True
        return False

    def take(self, kind: str, value: str | None = None) -> Any:
        toks, pos = self.toks, self.pos
        if pos >= len(toks) or toks[pos][0] != kind or (value is not None and str(toks[pos][1]).upper() != value):
            raise SfApiError(400, "MALFORMED_QUERY", f"unexpected token near position {pos}: expecting {value or kind}")
        self.pos += 1
        return toks[pos][1]

    def take_value(self) -> Any:
        kind, value = self.toks[self.pos] if self.pos < len(self.toks) else ("end", None)
        self.pos += 1
        if kind in ("str", "num"):
            return value
        if kind == "word" and str(value).lower() in ("null", "true", "false"):
            return {"null": None, "true": True, "false": False}[str(value).lower()]
        raise SfApiError(400, "MALFORMED_QUERY", f"unexpected token near position {self.pos - 1}: expecting a value")


def _like(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def run_soql(soql: Soql, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records (canonical field names) that ``soql`` selects, filtered, ordered and limited."""

    def canonical(name: str) -> str:
        return field_def(soql.object, name).name

    def keep(record: dict[str, Any]) -> bool:
        for cond in soql.where:
            value = record.get(canonical(cond.field))
            if cond.op == "=" and value != cond.values[0]:
                return False
            if cond.op == "!=" and value == cond.values[0]:
                return False
            if cond.op == "IN" and value not in cond.values:
                return False
            if cond.op == "LIKE" and (value is None or not _like(str(cond.values[0])).fullmatch(str(value))):
                return False
        return True

    hits = [r for r in records if keep(r)]
    if soql.order_by:
        key = canonical(soql.order_by)
        hits.sort(key=lambda r: (r.get(key) is None, str(r.get(key) or "")), reverse=soql.descending)
    if soql.limit is not None:
        hits = hits[: soql.limit]
    return hits

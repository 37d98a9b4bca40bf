"""SOQL: a tokenizer, a recursive-descent parser that binds names against the schema, an evaluator.

The subset is what the connector and a believable client use: field lists with parent
relationships (Account.Name, Owner.Email, What.Name, What.Type), COUNT() and COUNT(field), WHERE
with comparison operators, IN / NOT IN (lists and semi-join subqueries), LIKE, AND / OR / NOT with
parentheses, NULL, booleans, numbers, date and datetime literals and date ranges (TODAY,
LAST_N_DAYS:n, ...), ORDER BY with NULLS FIRST|LAST, LIMIT and OFFSET, and parent-to-child
subqueries in the select list (`(SELECT RelationId, Relation.Email FROM EventRelations WHERE ...
ORDER BY ... LIMIT n)`, one level, over the relationships `schema.CHILD_RELATIONSHIPS` declares).
Each parent record then carries the relationship as a nested query result, as Salesforce shows it:
`{"totalSize": n, "done": true, "records": [child records with "attributes"]}`, or null when no
child matches. Deleted children are left out, also under queryAll. As in a real org, mixing
AND and OR without parentheses is malformed, strings compare case-insensitively, and a literal of
the wrong type for its field is INVALID_FIELD. Date ranges use UTC as the org's time zone.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from scc_desktop.sandbox.salesforce import ids, schema
from scc_desktop.sandbox.salesforce.errors import (
    SfError,
    invalid_field,
    invalid_type,
    malformed_query,
)
from scc_desktop.sandbox.salesforce.schema import FieldDef, ObjectDef
from scc_desktop.sandbox.salesforce.values import parse_date, parse_dt

Record = dict[str, Any]

KEYWORDS = frozenset(
    [
        "SELECT",
        "FROM",
        "WHERE",
        "ORDER",
        "BY",
        "LIMIT",
        "OFFSET",
        "AND",
        "OR",
        "NOT",
        "IN",
        "LIKE",
        "NULL",
        "TRUE",
        "FALSE",
        "ASC",
        "DESC",
        "NULLS",
        "FIRST",
        "LAST",
        "GROUP",
        "HAVING",
        "WITH",
        "FOR",
        "INCLUDES",
        "EXCLUDES",
        "USING",
    ]
)
MAX_OFFSET = 2000
_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})(?![\d:T])
  | (?P<number>[+-]?\d+(?:\.\d+)?)(?![A-Za-z_])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),:])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # ident, string, number, date, datetime, op, punct, eof
    text: str
    pos: int
    value: Any = None  # strings: the unescaped text
    like: str = ""  # strings: a regex for LIKE (\% and \_ are literal)

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "ident" else ""


def _error_at(text: str, pos: int, message: str) -> SfError:
    return malformed_query(f"{text}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\n{message}")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        if text[i] == "'":
            tokens.append(_string(text, i))
            i = tokens[-1].pos + len(tokens[-1].text)
            continue
        m = _TOKEN_RE.match(text, i)
        if not m or m.end() == i:
            raise _error_at(text, i, f"unexpected token: '{text[i]}'")
        kind = m.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, m.group(), i))
        i = m.end()
    tokens.append(Token("eof", "<EOF>", len(text)))
    return tokens


def _string(text: str, start: int) -> Token:
    i = start + 1
    plain: list[str] = []
    like: list[str] = []
    while i < len(text):
        ch = text[i]
        if ch == "'":
            return Token("string", text[start : i + 1], start, "".join(plain), "".join(like))
        if ch == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt in _ESCAPES:
                plain.append(_ESCAPES[nxt])
                like.append(re.escape(_ESCAPES[nxt]))
            elif nxt in ("%", "_"):
                plain.append("\\" + nxt)
                like.append(re.escape(nxt))
            else:
                raise _error_at(
                    text,
                    i,
                    f"Invalid string literal '{text[start : i + 2]}'. Illegal character "
                    f"sequence '\\{nxt}' in string literal.",
                )
            i += 2
            continue
        plain.append(ch)
        like.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    raise _error_at(text, start, "unexpected token: unterminated string literal")


# -- AST -----------------------------------------------------------------------------
@dataclass
class FieldPath:
    text: str
    refs: list[FieldDef]  # reference fields walked from the root object
    final: FieldDef  # the field read at the end (a synthetic 'Type' for polymorphic parents)
    is_type: bool = False

    @property
    def key(self) -> str:
        return ".".join([r.relationship_name or r.name for r in self.refs] + [self.final.name])


@dataclass
class Literal:
    kind: str  # string, number, boolean, null, date, datetime, range
    value: Any
    text: str
    pos: int
    range_name: str = ""
    range_n: int = 0


@dataclass
class Compare:
    path: FieldPath
    op: str
    lit: Literal


@dataclass
class InList:
    path: FieldPath
    negate: bool
    values: list[Literal]
    subquery: Query | None = None


@dataclass
class Like:
    path: FieldPath
    regex: re.Pattern[str]


@dataclass
class BoolOp:
    op: str  # AND, OR
    items: list[Cond]


@dataclass
class Not:
    item: Cond


Cond = Compare | InList | Like | BoolOp | Not


@dataclass
class OrderItem:
    path: FieldPath
    desc: bool
    nulls_first: bool


@dataclass
class ChildSelect:
    """A parent-to-child subquery in a select list: `query` reads `fk`'s object."""

    name: str  # the relationship name as declared (the key in each parent record)
    fk: FieldDef  # the child's reference field to the parent
    query: Query


@dataclass
class Query:
    text: str
    obj: ObjectDef
    fields: list[FieldPath] = field(default_factory=list)
    # child subqueries, each with the number of fields selected before it (output order)
    children: list[tuple[int, ChildSelect]] = field(default_factory=list)
    count: str | None = None  # "" for COUNT(), a field name for COUNT(field)
    where: Cond | None = None
    order: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0


# -- parser --------------------------------------------------------------------------
_DATE_RANGES = frozenset(
    [
        "TODAY",
        "YESTERDAY",
        "TOMORROW",
        "THIS_WEEK",
        "LAST_WEEK",
        "NEXT_WEEK",
        "THIS_MONTH",
        "LAST_MONTH",
        "NEXT_MONTH",
        "THIS_YEAR",
    ]
)
_DATE_RANGES_N = frozenset(["LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO"])


class Parser:
    """Recursive descent over the token list; binds fields as it goes."""

    def __init__(self, text: str, enhanced: bool) -> None:
        self.text = text
        self.enhanced = enhanced
        self.tokens = tokenize(text)
        self.i = 0

    # token helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "eof":
            self.i += 1
        return tok

    def unexpected(self, tok: Token | None = None) -> SfError:
        tok = tok or self.tok
        return _error_at(self.text, tok.pos, f"unexpected token: {tok.text}")

    def at_kw(self, *words: str) -> bool:
        return self.tok.upper in words

    def expect_kw(self, word: str) -> Token:
        if self.tok.upper != word:
            raise self.unexpected()
        return self.advance()

    def expect_punct(self, ch: str) -> Token:
        if self.tok.kind != "punct" or self.tok.text != ch:
            raise self.unexpected()
        return self.advance()

    def at_punct(self, ch: str) -> bool:
        return self.tok.kind == "punct" and self.tok.text == ch

    # grammar
    def parse(self) -> Query:
        query = self.select()
        if self.tok.kind != "eof":
            raise self.unexpected()
        return query

    def select_list(self, allow_children: bool) -> list[Token | int]:
        """Field tokens, and for each child subquery the index of its opening parenthesis (it is
        parsed once the FROM object is known; see `child_select`)."""
        items: list[Token | int] = []
        while True:
            tok = self.tok
            if (
                tok.kind == "punct"
                and tok.text == "("
                and self.tokens[self.i + 1].upper == "SELECT"
            ):
                if not allow_children:
                    raise _error_at(
                        self.text, tok.pos, "nested child subqueries are not supported here"
                    )
                items.append(self.i)
                self.skip_parens()
            elif tok.kind != "ident" or tok.upper in KEYWORDS - {"FIRST", "LAST"}:
                raise self.unexpected()
            else:
                items.append(self.advance())
            if not self.at_punct(","):
                return items
            self.advance()

    def skip_parens(self) -> None:
        depth = 0
        while True:
            tok = self.advance()
            if tok.kind == "eof":
                raise self.unexpected(tok)
            if tok.kind == "punct" and tok.text == "(":
                depth += 1
            elif tok.kind == "punct" and tok.text == ")":
                depth -= 1
                if depth == 0:
                    return

    def child_select(self, parent: ObjectDef, start: int) -> ChildSelect:
        """`(SELECT ... FROM <relationship> [WHERE] [ORDER BY] [LIMIT] [OFFSET])` at `start`."""
        resume = self.i
        self.i = start
        self.expect_punct("(")
        self.expect_kw("SELECT")
        raw = self.select_list(allow_children=False)
        self.expect_kw("FROM")
        rel_tok = self.tok
        if rel_tok.kind != "ident" or "." in rel_tok.text:
            raise self.unexpected()
        self.advance()
        found = schema.child_relationship(parent, rel_tok.text)
        if found is None:
            raise SfError(
                400,
                "INVALID_TYPE",
                f"{self.text}\n{' ' * rel_tok.pos}^\nERROR at Row:1:Column:{rel_tok.pos + 1}\n"
                f"Didn't understand relationship '{rel_tok.text}' in FROM part of query call. "
                "If you are attempting to use a custom relationship, be sure to append the '__r' "
                "after the custom relationship name. Please reference your WSDL or the describe "
                "call for the appropriate names.",
            )
        name, child, fk = found
        query = Query(self.text, child)
        self.bind_fields(query, [t for t in raw if isinstance(t, Token)])
        self.tail(query)
        self.expect_punct(")")
        self.i = resume
        return ChildSelect(name, fk, query)

    def bind_fields(self, query: Query, tokens: list[Token]) -> None:
        seen = {path.key.lower() for path in query.fields}
        for tok in tokens:
            path = self.bind(query.obj, tok)
            if path.key.lower() in seen:
                raise malformed_query(f"duplicate field selected: {tok.text}")
            seen.add(path.key.lower())
            query.fields.append(path)

    def select(self) -> Query:
        self.expect_kw("SELECT")
        raw_fields: list[Token | int] = []
        count: str | None = None
        if self.tok.upper == "COUNT" and self.tokens[self.i + 1].text == "(":
            self.advance()
            self.expect_punct("(")
            count = self.advance().text if self.tok.kind == "ident" else ""
            self.expect_punct(")")
        else:
            raw_fields = self.select_list(allow_children=True)
        self.expect_kw("FROM")
        obj_tok = self.tok
        if obj_tok.kind != "ident" or "." in obj_tok.text:
            raise self.unexpected()
        self.advance()
        obj = schema.lookup(obj_tok.text)
        if obj is None:
            raise invalid_type(obj_tok.text)
        query = Query(self.text, obj, count=count)
        for item in raw_fields:
            if isinstance(item, Token):
                self.bind_fields(query, [item])
                continue
            child = self.child_select(obj, item)
            if any(c.name == child.name for _, c in query.children):
                raise malformed_query(
                    f"Cannot follow the same aggregate relationship twice: {child.name}"
                )
            query.children.append((len(query.fields), child))
        if count:
            self.bind(obj, Token("ident", count, 0))
        self.tail(query)
        return query

    def tail(self, query: Query) -> None:
        """WHERE, ORDER BY, LIMIT and OFFSET after the FROM object."""
        obj = query.obj
        if self.at_kw("WHERE"):
            self.advance()
            query.where = self.condition(obj)
        if self.at_kw("GROUP", "HAVING", "WITH", "FOR", "USING"):
            raise _error_at(self.text, self.tok.pos, f"{self.tok.text} is not supported here")
        if self.at_kw("ORDER"):
            self.advance()
            self.expect_kw("BY")
            query.order = self.order_by(obj)
        if self.at_kw("LIMIT"):
            self.advance()
            query.limit = self.integer()
        if self.at_kw("OFFSET"):
            self.advance()
            query.offset = self.integer()
            if query.offset > MAX_OFFSET:
                raise SfError(
                    400,
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    f"Maximum SOQL offset allowed is {MAX_OFFSET}",
                )

    def integer(self) -> int:
        tok = self.tok
        if tok.kind != "number" or not tok.text.isdigit():
            raise self.unexpected()
        self.advance()
        return int(tok.text)

    def order_by(self, obj: ObjectDef) -> list[OrderItem]:
        items: list[OrderItem] = []
        while True:
            tok = self.tok
            if tok.kind != "ident" or tok.upper in KEYWORDS:
                raise self.unexpected()
            self.advance()
            path = self.bind(obj, tok)
            desc = False
            if self.at_kw("ASC", "DESC"):
                desc = self.advance().upper == "DESC"
            nulls_first = not desc
            if self.at_kw("NULLS"):
                self.advance()
                if not self.at_kw("FIRST", "LAST"):
                    raise self.unexpected()
                nulls_first = self.advance().upper == "FIRST"
            items.append(OrderItem(path, desc, nulls_first))
            if not self.at_punct(","):
                return items
            self.advance()

    def condition(self, obj: ObjectDef) -> Cond:
        first = self.unary(obj)
        if not self.at_kw("AND", "OR"):
            return first
        op = self.tok.upper
        items = [first]
        while self.at_kw("AND", "OR"):
            if self.tok.upper != op:
                raise self.unexpected()
            self.advance()
            items.append(self.unary(obj))
        return BoolOp(op, items)

    def unary(self, obj: ObjectDef) -> Cond:
        if self.at_kw("NOT"):
            self.advance()
            return Not(self.unary(obj))
        if self.at_punct("("):
            self.advance()
            inner = self.condition(obj)
            self.expect_punct(")")
            return inner
        return self.predicate(obj)

    def predicate(self, obj: ObjectDef) -> Cond:
        tok = self.tok
        if tok.kind != "ident" or tok.upper in KEYWORDS:
            raise self.unexpected()
        self.advance()
        path = self.bind(obj, tok)
        if self.tok.kind == "op":
            op = self.advance().text
            op = "!=" if op == "<>" else op
            lit = self.literal()
            self.check_literal(path, lit, op)
            return Compare(path, op, lit)
        negate = False
        if self.at_kw("NOT"):
            self.advance()
            negate = True
            if not self.at_kw("IN"):
                raise self.unexpected()
        if self.at_kw("IN"):
            self.advance()
            self.expect_punct("(")
            if self.at_kw("SELECT"):
                sub = self.select()
                self.expect_punct(")")
                if (
                    len(sub.fields) != 1
                    or sub.children
                    or sub.fields[0].final.type not in ("id", "reference")
                ):
                    raise malformed_query(
                        "The selected field in a semi-join subquery must be an id or reference"
                    )
                if path.final.type not in ("id", "reference"):
                    raise invalid_field(f"Field {path.text} cannot be used in a semi-join")
                return InList(path, negate, [], sub)
            values: list[Literal] = []
            while True:
                lit = self.literal()
                if lit.kind == "range":
                    raise self.unexpected(Token("ident", lit.text, lit.pos))
                self.check_literal(path, lit, "=")
                values.append(lit)
                if not self.at_punct(","):
                    break
                self.advance()
            self.expect_punct(")")
            return InList(path, negate, values)
        if self.at_kw("LIKE"):
            self.advance()
            lit_tok = self.tok
            if lit_tok.kind != "string":
                raise self.unexpected()
            self.advance()
            if path.final.type in ("id", "reference") or not (path.final.is_string or path.is_type):
                raise invalid_field(f"invalid operator on {path.final.type} field: {path.text}")
            self.check_filterable(path)
            return Like(path, re.compile(lit_tok.like, re.IGNORECASE | re.DOTALL))
        raise self.unexpected()

    def literal(self) -> Literal:
        tok = self.advance()
        if tok.kind == "string":
            return Literal("string", tok.value, tok.text, tok.pos)
        if tok.kind == "number":
            num = float(tok.text) if "." in tok.text else int(tok.text)
            return Literal("number", num, tok.text, tok.pos)
        if tok.kind == "date":
            try:
                return Literal("date", parse_date(tok.text), tok.text, tok.pos)
            except ValueError:
                raise self.unexpected(tok) from None
        if tok.kind == "datetime":
            try:
                return Literal("datetime", parse_dt(tok.text), tok.text, tok.pos)
            except ValueError:
                raise self.unexpected(tok) from None
        if tok.kind == "ident":
            word = tok.upper
            if word == "NULL":
                return Literal("null", None, tok.text, tok.pos)
            if word in ("TRUE", "FALSE"):
                return Literal("boolean", word == "TRUE", tok.text, tok.pos)
            if word in _DATE_RANGES:
                return Literal("range", None, tok.text, tok.pos, word)
            if word in _DATE_RANGES_N:
                self.expect_punct(":")
                n = self.tok
                if n.kind != "number" or not n.text.isdigit():
                    raise self.unexpected()
                self.advance()
                return Literal("range", None, tok.text, tok.pos, word, int(n.text))
        raise self.unexpected(tok)

    def check_filterable(self, path: FieldPath) -> None:
        f = path.final
        if f.type == "base64" or (f.type == "textarea" and f.length > 255):
            raise invalid_field(f"field '{f.name}' can not be filtered in a query call")

    def check_literal(self, path: FieldPath, lit: Literal, op: str) -> None:
        self.check_filterable(path)
        f = path.final
        name = f.name
        if lit.kind == "null":
            if op not in ("=", "!="):
                raise malformed_query(f"invalid operator {op} with null on field {path.text}")
            return
        kind = "string" if path.is_type else f.type
        if kind in ("id", "reference"):
            if lit.kind != "string":
                raise invalid_field(
                    f"value of filter criterion for field '{name}' must be of type id and "
                    "should be enclosed in quotes"
                )
            if lit.value != "" and ids.normalize(lit.value) is None:
                raise SfError(
                    400, "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {lit.value}"
                )
            return
        if kind in schema.STRING_TYPES or kind == "junctionidlist":
            ok, want = lit.kind == "string", "string and should be enclosed in quotes"
        elif kind == "boolean":
            ok, want = lit.kind == "boolean", "boolean and should not be enclosed in quotes"
        elif kind in schema.NUMBER_TYPES:
            ok, want = lit.kind == "number", "number and should not be enclosed in quotes"
        elif kind == "date":
            ok = lit.kind in ("date", "range")
            want = "date and should not be enclosed in quotes"
        elif kind == "datetime":
            ok = lit.kind in ("datetime", "range")
            want = "dateTime and should not be enclosed in quotes"
        else:
            ok, want = False, kind
        if not ok:
            raise invalid_field(
                f"value of filter criterion for field '{name}' must be of type {want}"
            )

    def bind(self, obj: ObjectDef, tok: Token) -> FieldPath:
        parts = tok.text.split(".")
        current: list[ObjectDef] = [obj]
        refs: list[FieldDef] = []
        for rel in parts[:-1]:
            found: FieldDef | None = None
            for o in current:
                found = o.relationship(rel, self.enhanced)
                if found is not None:
                    break
            if found is None:
                raise invalid_field(
                    f"ERROR at Row:1:Column:{tok.pos + 1}\nDidn't understand relationship "
                    f"'{rel}' in field path. If you are attempting to use a custom relationship, "
                    "be sure to append the '__r' after the custom relationship name."
                )
            refs.append(found)
            current = [o for o in (schema.OBJECTS.get(t) for t in found.reference_to) if o]
            if not current:
                raise invalid_field(f"Didn't understand relationship '{rel}' in field path.")
        last = parts[-1]
        if refs and len(refs[-1].reference_to) > 1 and last.lower() == "type":
            return FieldPath(tok.text, refs, FieldDef("Type", "string", 255), is_type=True)
        for o in current:
            f = o.field(last, self.enhanced)
            if f is not None:
                return FieldPath(tok.text, refs, f)
        entity = current[0].name if len(current) == 1 or not refs else refs[-1].relationship_name
        raise invalid_field(
            f"ERROR at Row:1:Column:{tok.pos + 1}\nNo such column '{last}' on entity '{entity}'. "
            "If you are attempting to use a custom field, be sure to append the '__c' after the "
            "custom field name. Please reference your WSDL or the describe call for the "
            "appropriate names."
        )


def parse(text: str, enhanced: bool = True) -> Query:
    if not text.strip():
        raise malformed_query("empty query")
    return Parser(text, enhanced).parse()


# -- evaluation ----------------------------------------------------------------------
class Source(Protocol):
    def records(self, sobject: str) -> Iterable[Record]: ...

    def get(self, record_id: str) -> Record | None: ...


@dataclass
class Result:
    total_size: int
    records: list[dict[str, Any]]


@functools.lru_cache(maxsize=65536)
def _dt(text: str) -> datetime:
    return parse_dt(text)


def _day_start(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def date_range(name: str, n: int, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of a date literal, in UTC."""
    today = now.astimezone(UTC).date()
    day = timedelta(days=1)
    week_start = today - timedelta(days=(today.weekday() + 1) % 7)  # weeks start on Sunday
    month_start = today.replace(day=1)

    def add_months(d: date, k: int) -> date:
        m = d.month - 1 + k
        return date(d.year + m // 12, m % 12 + 1, 1)

    ranges: dict[str, tuple[date, date]] = {
        "TODAY": (today, today + day),
        "YESTERDAY": (today - day, today),
        "TOMORROW": (today + day, today + 2 * day),
        "THIS_WEEK": (week_start, week_start + 7 * day),
        "LAST_WEEK": (week_start - 7 * day, week_start),
        "NEXT_WEEK": (week_start + 7 * day, week_start + 14 * day),
        "THIS_MONTH": (month_start, add_months(month_start, 1)),
        "LAST_MONTH": (add_months(month_start, -1), month_start),
        "NEXT_MONTH": (add_months(month_start, 1), add_months(month_start, 2)),
        "THIS_YEAR": (date(today.year, 1, 1), date(today.year + 1, 1, 1)),
        "LAST_N_DAYS": (today - n * day, today + day),
        "NEXT_N_DAYS": (today + day, today + (n + 1) * day),
        "N_DAYS_AGO": (today - n * day, today - (n - 1) * day),
    }
    start, end = ranges[name]
    return _day_start(start), _day_start(end)


class Evaluator:
    def __init__(self, source: Source, now: datetime, base: str) -> None:
        self.source = source
        self.now = now
        self.base = base
        # per-query caches, keyed by AST node: literal sets of IN lists, semi-join results
        self._in_cache: dict[int, tuple[frozenset[Any], bool]] = {}
        self._lit_cache: dict[int, Any] = {}
        self._child_cache: dict[int, dict[str, list[Record]]] = {}

    def value(self, rec: Record, path: FieldPath) -> Any:
        cur: Record | None = rec
        for ref in path.refs:
            rid = cur.get(ref.name) if cur is not None else None
            cur = self.source.get(rid) if rid else None
            if cur is None:
                return None
        assert cur is not None
        if path.is_type:
            return cur["attributes"]["type"]
        return cur.get(path.final.name)

    # normalization for comparisons and sorting
    def norm(self, ftype: str, value: Any) -> Any:
        if value is None:
            return None
        if ftype == "datetime":
            return _dt(value)
        if ftype == "date":
            return _day_start(date.fromisoformat(value))
        if ftype in ("id", "reference"):
            return value
        if ftype in schema.NUMBER_TYPES:
            return float(value)
        if isinstance(value, str):
            return value.casefold()
        return value

    def lit_norm(self, ftype: str, lit: Literal) -> Any:
        if lit.kind == "string":
            if ftype in ("id", "reference"):
                return ids.normalize(lit.value) if lit.value else None
            return str(lit.value).casefold()
        if lit.kind == "date":
            return _day_start(lit.value)
        if lit.kind == "number":
            return float(lit.value)
        return lit.value

    def test(self, rec: Record, cond: Cond) -> bool:
        if isinstance(cond, BoolOp):
            if cond.op == "AND":
                return all(self.test(rec, c) for c in cond.items)
            return any(self.test(rec, c) for c in cond.items)
        if isinstance(cond, Not):
            return not self.test(rec, cond.item)
        ftype = "string" if cond.path.is_type else cond.path.final.type
        raw = self.value(rec, cond.path)
        if isinstance(cond, Like):
            return raw is not None and cond.regex.fullmatch(str(raw)) is not None
        if isinstance(cond, InList):
            return self.test_in(cond, ftype, raw)
        return self.compare(ftype, raw, cond.op, cond.lit)

    def test_in(self, cond: InList, ftype: str, raw: Any) -> bool:
        if cond.subquery is not None:
            values = getattr(cond, "_cache", None)
            if values is None:
                sub = cond.subquery
                values = {
                    self.value(r, sub.fields[0]) for r in self.matching(sub, include_deleted=False)
                }
                values.discard(None)
                cond._cache = values  # type: ignore[attr-defined]
            hit = raw in values
        else:
            key = id(cond)
            if key not in self._in_cache:
                self._in_cache[key] = (
                    frozenset(
                        self.lit_norm(ftype, lit) for lit in cond.values if lit.kind != "null"
                    ),
                    any(lit.kind == "null" for lit in cond.values),
                )
            wanted, with_null = self._in_cache[key]
            v = self.norm(ftype, raw)
            hit = with_null if v is None else v in wanted
        return hit != cond.negate

    def compare(self, ftype: str, raw: Any, op: str, lit: Literal) -> bool:
        if lit.kind == "null":
            return (raw is None) == (op == "=")
        v = self.norm(ftype, raw)
        if lit.kind == "range":
            if v is None:
                return op == "!="
            start, end = date_range(lit.range_name, lit.range_n, self.now)
            inside = bool(start <= v < end)
            result: dict[str, bool] = {
                "=": inside,
                "!=": not inside,
                "<": v < start,
                "<=": v < end,
                ">": v >= end,
                ">=": v >= start,
            }
            return result[op]
        key = id(lit)
        if key not in self._lit_cache:
            self._lit_cache[key] = self.lit_norm(ftype, lit)
        target = self._lit_cache[key]
        if v is None or target is None:
            return op == "!=" and (v is None) != (target is None)
        ops: dict[str, Callable[[Any, Any], bool]] = {
            "=": lambda a, b: bool(a == b),
            "!=": lambda a, b: bool(a != b),
            "<": lambda a, b: bool(a < b),
            "<=": lambda a, b: bool(a <= b),
            ">": lambda a, b: bool(a > b),
            ">=": lambda a, b: bool(a >= b),
        }
        try:
            return ops[op](v, target)
        except TypeError:
            return False

    def matching(self, query: Query, include_deleted: bool) -> list[Record]:
        out = []
        for rec in self.source.records(query.obj.name):
            if rec.get("IsDeleted") and not include_deleted:
                continue
            if query.where is None or self.test(rec, query.where):
                out.append(rec)
        return out

    def sort(self, rows: list[Record], order: list[OrderItem]) -> None:
        for item in reversed(order):
            ftype = "string" if item.path.is_type else item.path.final.type
            null_rank = (
                (0 if item.nulls_first else 2) if not item.desc else (2 if item.nulls_first else 0)
            )

            def key(
                rec: Record,
                ftype: str = ftype,
                null_rank: int = null_rank,
                path: FieldPath = item.path,
            ) -> tuple[int, Any]:
                v = self.norm(ftype, self.value(rec, path))
                return (null_rank, 0) if v is None else (1, v)

            rows.sort(key=key, reverse=item.desc)

    def children(self, rec: Record, child: ChildSelect) -> dict[str, Any] | None:
        """One parent's child subquery result, or None when no child matches (as Salesforce)."""
        key = id(child)
        if key not in self._child_cache:
            by_parent: dict[str, list[Record]] = {}
            for row in self.matching(child.query, include_deleted=False):
                parent_id = row.get(child.fk.name)
                if parent_id:
                    by_parent.setdefault(parent_id, []).append(row)
            self._child_cache[key] = by_parent
        rows = list(self._child_cache[key].get(rec["Id"], ()))
        sub = child.query
        self.sort(rows, sub.order)
        rows = rows[sub.offset :]
        if sub.limit is not None:
            rows = rows[: sub.limit]
        if not rows:
            return None
        return {
            "totalSize": len(rows),
            "done": True,
            "records": [self.project(r, sub.fields) for r in rows],
        }

    def project(
        self,
        rec: Record,
        fields: list[FieldPath],
        children: Sequence[tuple[int, ChildSelect]] = (),
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": self.attributes(rec)}
        pending = list(children)
        for position, path in enumerate(fields):
            while pending and pending[0][0] == position:
                sub = pending.pop(0)[1]
                out[sub.name] = self.children(rec, sub)
            if not path.refs:
                out[path.final.name] = self.output(rec, path.final)
                continue
            node: dict[str, Any] | None = out
            cur: Record | None = rec
            for ref in path.refs:
                assert node is not None
                name = ref.relationship_name or ref.name
                rid = cur.get(ref.name) if cur is not None else None
                parent = self.source.get(rid) if rid else None
                if parent is None:
                    node.setdefault(name, None)
                    node = None
                    break
                child = node.get(name)
                if not isinstance(child, dict):
                    child = {"attributes": self.attributes(parent)}
                    node[name] = child
                node, cur = child, parent
            if node is not None and cur is not None:
                node[path.final.name] = (
                    cur["attributes"]["type"] if path.is_type else self.output(cur, path.final)
                )
        for _, sub in pending:
            out[sub.name] = self.children(rec, sub)
        return out

    def output(self, rec: Record, f: FieldDef) -> Any:
        """A field as the API shows it: blobs become the URL that serves their bytes."""
        value = rec.get(f.name)
        if f.type == "base64" and value is not None:
            return f"{self.attributes(rec)['url']}/{f.name}"
        return value

    def attributes(self, rec: Record) -> dict[str, str]:
        sobject = rec["attributes"]["type"]
        return {"type": sobject, "url": f"{self.base}/sobjects/{sobject}/{rec['Id']}"}

    def run(self, query: Query, include_deleted: bool) -> Result:
        rows = self.matching(query, include_deleted)
        if query.count is not None:
            n = len(rows)
            if query.count == "":
                return Result(n, [])
            path = Parser(query.text, True).bind(query.obj, Token("ident", query.count, 0))
            n = sum(1 for r in rows if self.value(r, path) is not None)
            return Result(1, [{"attributes": {"type": "AggregateResult"}, "expr0": n}])
        self.sort(rows, query.order)
        rows = rows[query.offset :]
        if query.limit is not None:
            rows = rows[: query.limit]
        return Result(len(rows), [self.project(r, query.fields, query.children) for r in rows])


def run(
    text: str,
    source: Source,
    now: datetime,
    *,
    include_deleted: bool = False,
    enhanced: bool = True,
    base: str = "/services/data/v59.0",
) -> Result:
    """Parse and evaluate one query; raises SfError with Salesforce's codes."""
    return Evaluator(source, now, base).run(parse(text, enhanced), include_deleted)

"""Dolibarr's ``sqlfilters`` universal search syntax, parsed and evaluated the way 20.0.2 does it.

Dolibarr never parses the filter into a tree. ``forgeSQLFromUniversalSearchCriteria``
(core/lib/functions.lib.php):

1. wraps the string in ``(...)`` when it does not start with ``(`` and end with ``)``;
2. checks the balance of parentheses (``dolCheckFilters``):
   "Wrong balance of parenthesis in sqlfilters=...";
3. replaces every ``(field:op:value)`` matching
   ``\\(([a-zA-Z0-9_\\.]+:[<>!=insotlke]+:[^\\(\\)]+)\\)`` with ``()``, deletes the exact strings ``and``,
   ``or``, ``AND``, ``OR`` and spaces, and refuses anything but parentheses left:
   "Bad syntax of the search string: <filter>";
4. replaces each criterion with SQL (``dolForgeCriteriaCallback``, ``explode(':', $m, 3)``) and pastes the
   result into the WHERE clause.

So a value cannot contain ``(`` or ``)`` (400 bad syntax), quotes inside a quoted value are not an escape
(``'O''Brien'`` is the literal ``O''Brien``), ``%`` and ``_`` are LIKE wildcards and never escaped, and an
unquoted value is cast to a number (``(float)`` in PHP). Errors that only the database would find (an
unknown column, an unknown operator made of the allowed letters, ``(a)(b)``) are :class:`SqlError`, answered
503 by the list endpoints like a failed query.

Evaluation follows MariaDB with Dolibarr's ``utf8mb4_unicode_ci`` columns: string comparisons ignore case and
trailing spaces, a number compared with a string converts the string to a number, NULL never compares true.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

ColType = Literal["int", "num", "str", "date"]
Getter = Callable[[dict[str, Any]], Any]
Columns = dict[str, tuple[ColType, Getter]]

_CRITERION = re.compile(r"\(([a-zA-Z0-9_\.]+:[<>!=insotlke]+:[^\(\)]+)\)", re.IGNORECASE)
_WRAPPED = re.compile(r"^\(.*\)$")
_OPERATORS = {
    "=": "=",
    "<": "<",
    ">": ">",
    "<=": "<=",
    ">=": ">=",
    "!=": "<>",
    "<>": "<>",
    "IN": "IN",
    "NOTIN": "NOT IN",
    "LIKE": "LIKE",
    "NOTLIKE": "NOT LIKE",
    "IS": "IS",
    "ISNOT": "IS NOT",
}
_NUM_PREFIX = re.compile(r"^\s*[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)")


class FilterSyntaxError(ValueError):
    """What Dolibarr answers 400 for: ``Error when validating parameter sqlfilters -> <message>``."""


class SqlError(ValueError):
    """A filter that passes Dolibarr's checks but that the database refuses (503 on list endpoints)."""


@dataclass(frozen=True)
class Criterion:
    field: str
    op: str  # SQL operator: = < > <= >= <> IN NOT IN LIKE NOT LIKE IS IS NOT
    raw: str  # the value exactly as written after the second colon
    quoted: bool
    value: str | float | None  # None for NULL
    items: tuple[tuple[bool, str], ...] = ()  # IN lists: (quoted, sanitized text)


Node = Criterion | tuple[str, "Node", "Node"]  # ("and" | "or", left, right)


def _check_balance(f: str) -> None:
    depth = 0
    for ch in f:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if depth < 0:
            raise FilterSyntaxError("Wrong balance of parenthesis in sqlfilters=" + f)
    if depth > 0:
        raise FilterSyntaxError("Wrong balance of parenthesis in sqlfilters=" + f)


def _sanitize(s: str) -> str:
    """``DoliDB::sanitize($s, 1, 1, 1)``: keep letters, digits, ``_-.,'=`` and spaces."""
    return re.sub(r"[^a-z0-9_\-\.,'= ]", "", s, flags=re.IGNORECASE)


def _php_float(s: str) -> float:
    m = _NUM_PREFIX.match(s)
    return float(m.group(0)) if m else 0.0


def _criterion(text: str) -> Criterion:
    field_s, op_s, raw = text.split(":", 2)
    field = re.sub(r"[^a-z0-9\._]", "", field_s.strip(), flags=re.IGNORECASE)
    op_key = re.sub(r"[^a-z<>!=]", "", op_s.strip(), flags=re.IGNORECASE).upper()
    op = _OPERATORS.get(op_key)
    if op is None:
        raise SqlError(f"You have an error in your SQL syntax near '{op_key} {raw}'")
    if op in ("IN", "NOT IN"):
        items: list[tuple[bool, str]] = []
        for elem in raw.split(","):
            m = re.match(r"^'(.*)'$", elem)
            items.append((True, _sanitize(m.group(1))) if m else (False, _sanitize(elem)))
        return Criterion(field, op, raw, False, None, tuple(items))
    if op in ("LIKE", "NOT LIKE"):
        m = re.match(r"^'([^']*)'$", raw)
        return Criterion(field, op, raw, True, m.group(1) if m else raw)
    m = re.match(r"^'(.*)'$", raw)
    if m:
        return Criterion(field, op, raw, True, m.group(1))
    if raw.upper() == "NULL":
        return Criterion(field, op, raw, False, None)
    if op in ("IS", "IS NOT"):
        raise SqlError(f"You have an error in your SQL syntax near '{op} {raw}'")
    return Criterion(field, op, raw, False, _php_float(raw))


def parse(sqlfilters: str) -> Node | None:
    """Parse a filter string; ``None`` for the empty string. Raises FilterSyntaxError / SqlError."""
    if sqlfilters == "":
        return None
    f = sqlfilters if _WRAPPED.match(sqlfilters) else "(" + sqlfilters + ")"
    _check_balance(f)
    t = _CRITERION.sub("()", f)
    for word in ("and", "or", "AND", "OR", " "):
        t = t.replace(word, "")
    if re.search(r"[^\(\)]", t):
        raise FilterSyntaxError("Bad syntax of the search string: " + f)
    # Tokenize what the database would receive: criteria, parentheses and the words between them.
    tokens: list[str | Criterion] = []
    pos = 0
    for m in _CRITERION.finditer(f):
        tokens.extend(_words(f[pos : m.start()]))
        tokens.append(_criterion(m.group(1)))
        pos = m.end()
    tokens.extend(_words(f[pos:]))
    return _Parser(tokens).parse()


def _words(s: str) -> list[str | Criterion]:
    out: list[str | Criterion] = []
    for tok in re.findall(r"\(|\)|[^\s()]+", s):
        out.append(tok.lower() if tok.lower() in ("and", "or") else tok)
    return out


class _Parser:
    """SQL precedence: AND binds tighter than OR."""

    def __init__(self, tokens: list[str | Criterion]) -> None:
        self.tokens = tokens
        self.i = 0

    def _peek(self) -> str | Criterion | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def parse(self) -> Node:
        node = self._or()
        if self._peek() is not None:
            raise SqlError("You have an error in your SQL syntax")
        return node

    def _or(self) -> Node:
        node = self._and()
        while self._peek() == "or":
            self.i += 1
            node = ("or", node, self._and())
        return node

    def _and(self) -> Node:
        node = self._atom()
        while self._peek() == "and":
            self.i += 1
            node = ("and", node, self._atom())
        return node

    def _atom(self) -> Node:
        tok = self._peek()
        self.i += 1
        if isinstance(tok, Criterion):
            return tok
        if tok == "(":
            node = self._or()
            if self._peek() != ")":
                raise SqlError("You have an error in your SQL syntax")
            self.i += 1
            return node
        raise SqlError("You have an error in your SQL syntax")


def check_columns(node: Node | None, columns: Columns) -> None:
    """Raise SqlError for a column the table does not have (checked once, before any row is read)."""
    if node is None:
        return
    if isinstance(node, Criterion):
        if _column(columns, node.field) is None:
            raise SqlError(f"Unknown column '{node.field}' in 'where clause'")
        return
    check_columns(node[1], columns)
    check_columns(node[2], columns)


def _column(columns: Columns, name: str) -> tuple[ColType, Getter] | None:
    name = name.lower()
    if name in columns:
        return columns[name]
    if "." not in name:
        return columns.get("t." + name)
    return None


def equalities(node: Node | None) -> list[Criterion]:
    """The criteria every matching row satisfies: ``=`` with a quoted value, joined to the filter by AND only
    (``(t.ref_ext:=:'x') and (t.entity:=:1)`` gives the first; anything under an OR gives nothing)."""
    if node is None:
        return []
    if isinstance(node, Criterion):
        return [node] if node.op == "=" and node.quoted and isinstance(node.value, str) else []
    op, left, right = node
    return equalities(left) + equalities(right) if op == "and" else []


def index_candidates(
    node: Node | None, columns: Columns, lookups: Mapping[str, Callable[[str], Iterable[int]]]
) -> set[int] | None:
    """Ids of the rows that may match ``node``, from the smallest index answer among its equalities on string
    columns that ``lookups`` (``t.<column>`` -> ids whose value equals the argument, compared as the
    collation does: case and trailing spaces ignored) can answer; None when none can (read every row). The rows
    still go through :func:`matches`: an index only narrows what is read. An empty value is never looked up
    (indexes leave empty values out)."""
    best: set[int] | None = None
    for criterion in equalities(node):
        name = _column_name(columns, criterion.field)
        if name is None or name not in lookups or columns[name][0] != "str":
            continue
        lookup = lookups[name]
        if _norm(str(criterion.value)) == "":
            continue
        ids = set(lookup(str(criterion.value)))
        if best is None or len(ids) < len(best):
            best = ids
    return best


def _column_name(columns: Columns, name: str) -> str | None:
    """The key of ``columns`` that ``name`` designates (what :func:`_column` reads)."""
    name = name.lower()
    if name in columns:
        return name
    if "." not in name and "t." + name in columns:
        return "t." + name
    return None


def matches(node: Node | None, row: dict[str, Any], columns: Columns) -> bool:
    if node is None:
        return True
    if isinstance(node, Criterion):
        col = _column(columns, node.field)
        assert col is not None
        return _eval(node, col[0], col[1](row)) is True
    op, left, right = node
    if op == "and":
        return matches(left, row, columns) and matches(right, row, columns)
    return matches(left, row, columns) or matches(right, row, columns)


def _norm(s: str) -> str:
    return s.rstrip(" ").casefold()


def _to_datetime(s: str) -> datetime | None:
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%Y%m%d%H%M%S", "%Y%m%d", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(s.strip(), fmt)
        except ValueError:
            continue
    return None


def _cmp(a: Any, b: Any) -> int:
    return int(a > b) - int(a < b)


def _compare(ctype: ColType, colval: Any, quoted: bool, lit: str | float) -> int | None:
    """-1 / 0 / 1 like SQL, or None when the comparison is unknown."""
    if colval is None:
        return None
    if ctype == "date":
        cv = colval if isinstance(colval, datetime) else _to_datetime(str(colval))
        if cv is None:
            return None
        if quoted:
            lv = _to_datetime(str(lit))
            if lv is None:
                return _cmp(_norm(cv.strftime("%Y-%m-%d %H:%M:%S")), _norm(str(lit)))
            return _cmp(cv, lv)
        return _cmp(float(cv.strftime("%Y%m%d%H%M%S")), float(lit))
    if ctype in ("int", "num"):
        cnum = float(colval) if not isinstance(colval, str) else _php_float(colval)
        lnum = _php_float(lit) if isinstance(lit, str) else float(lit)
        return _cmp(cnum, lnum)
    # string column
    if not quoted:
        return _cmp(_php_float(str(colval)), float(lit))
    return _cmp(_norm(str(colval)), _norm(str(lit)))


def _like(pattern: str, value: str) -> bool:
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
    return re.fullmatch("".join(out), value, flags=re.IGNORECASE | re.DOTALL) is not None


def _eval(c: Criterion, ctype: ColType, colval: Any) -> bool | None:
    if c.op in ("IS", "IS NOT"):
        return (colval is None) == (c.op == "IS")
    if colval is None:
        return None
    if c.op in ("LIKE", "NOT LIKE"):
        if isinstance(colval, datetime):
            text = colval.strftime("%Y-%m-%d %H:%M:%S")
        elif isinstance(colval, float) and colval.is_integer():
            text = str(int(colval))
        else:
            text = str(colval)
        hit = _like(str(c.value), text)
        return hit if c.op == "LIKE" else not hit
    if c.op in ("IN", "NOT IN"):
        results = [_compare(ctype, colval, q, v if q else _php_float(v)) for q, v in c.items]
        if any(r == 0 for r in results):
            return c.op == "IN"
        if any(r is None for r in results):
            return None
        return c.op == "NOT IN"
    if c.value is None:  # = NULL, < NULL ...: unknown
        return None
    r = _compare(ctype, colval, c.quoted, c.value)
    if r is None:
        return None
    return {
        "=": r == 0,
        "<>": r != 0,
        "<": r < 0,
        ">": r > 0,
        "<=": r <= 0,
        ">=": r >= 0,
    }[c.op]


def sort_key(columns: Columns, sortfield: str) -> list[tuple[ColType, Getter]]:
    """Getters for ``sortfield`` (comma separated); SqlError for an unknown column."""
    out = []
    for name in sortfield.split(","):
        name = name.strip()
        if not name:
            continue
        col = _column(columns, name)
        if col is None:
            raise SqlError(f"Unknown column '{name}' in 'order clause'")
        out.append(col)
    return out


def sort_rows(
    rows: list[dict[str, Any]], columns: Columns, sortfield: str, sortorder: str
) -> list[dict[str, Any]]:
    """Sort like ``ORDER BY``: NULLs first ascending, strings case-insensitively, stable."""
    getters = sort_key(columns, sortfield)
    orders = [o.strip().upper() for o in sortorder.split(",")] if sortorder else ["ASC"]
    for idx in range(len(getters) - 1, -1, -1):
        ctype, get = getters[idx]
        desc = (orders[idx] if idx < len(orders) else orders[-1]) == "DESC"

        def key(row: dict[str, Any], ctype: ColType = ctype, get: Getter = get) -> tuple[int, Any]:
            v = get(row)
            if v is None:
                return (0, 0)
            if ctype in ("int", "num"):
                return (1, v if isinstance(v, int | float) else _php_float(str(v)))
            if ctype == "date":
                d = v if isinstance(v, datetime) else _to_datetime(str(v))
                return (1, d.timestamp() if d else 0)
            return (1, _norm(str(v)))

        rows = sorted(rows, key=key, reverse=desc)
    return rows

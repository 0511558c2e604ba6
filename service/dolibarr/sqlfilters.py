"""Dolibarr ``sqlfilters`` expressions, built safely, and a pure-Python model of how Dolibarr 20 reads them.

Dolibarr's REST list endpoints take ``sqlfilters=(t.ref_ext:like:'ps-main-%')``. The server side
(``functions.lib.php``: ``forgeSQLFromUniversalSearchCriteria``, ``dolCheckFilters``,
``dolForgeCriteriaCallback``; the WAF ``testSqlAndScriptInject`` run on every GET parameter) works like this:

1. ``dolCheckFilters``: parentheses must balance. Quotes are *not* understood: a ``(`` or ``)`` inside a value
   breaks the expression.
2. Each criterion must match ``\\(([a-zA-Z0-9_.]+:[<>!=insotlke]+:[^()]+)\\)``; once every criterion is
   replaced, only ``(``, ``)``, spaces and ``and``/``or`` (lower or upper case) may remain, else HTTP 400
   "Bad syntax of the search string".
3. A criterion is split on ``:`` (``explode(':', $criterion, 3)`` in 17.x-20.x; some forks split without the
   limit, which cuts a value at its first colon and turns ``'ps`` into the number 0: ``t.ref_ext = 0`` matches
   almost every row in MySQL). Colons are therefore refused in values.
4. ``=``-like operators: a value ``'...'`` loses its first and last quote and goes through ``$db->escape()``,
   so quotes and backslashes inside are literal. ``like``: the value is unquoted only when it holds no quote
   (``/^'([^']*)'$/``), then escaped, but ``%`` and ``_`` stay wildcards and ``\\`` stays LIKE's escape
   character. Anything unquoted is cast to a number.
5. The WAF refuses, in any GET parameter, ``"``, control characters, invalid UTF-8, HTML tags such as
   ``<script``, ``on<event>=``, ``javascript:``, SQL shapes such as ``union ... select`` or ``delete from``,
   encoded colons (``&#58;``); HTML entities are decoded first. A refusal is an HTTP 403 HTML page.
6. MySQL/MariaDB compare with the column's collation (usually ``utf8mb4_unicode_ci``): ``=`` and ``LIKE``
   ignore case and accents, ``=`` ignores trailing spaces. A filter therefore *narrows* a lookup; the client
   checks the rows it gets back for exact equality (``rest.py`` does).

The builders here refuse (:class:`UnsafeFilterValue`) every value they cannot express exactly:
parentheses, colons, double quotes, ``&``, ``<``, ``>``, control characters, characters outside the Basic
Multilingual Plane (``utf8mb3`` databases cannot compare them), a single quote in a ``like`` prefix, and any
expression the WAF model refuses. ``%``, ``_`` and ``\\`` in a ``like`` prefix are escaped with ``\\``. The
client then falls back to a path lookup or to a scan narrowed by :func:`safe_like_prefix` with exact filtering
on its side.

:func:`parse` and :func:`matches` model the server (tests check every built filter against them);
:func:`waf_refuses` models the WAF for GET parameters.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = [
    "And",
    "Compare",
    "FilterSyntaxError",
    "Node",
    "Or",
    "UnsafeFilterValue",
    "combine_and",
    "matches",
    "parse",
    "safe_like_prefix",
    "sql_eq",
    "sql_like_prefix",
    "waf_refuses",
]


class UnsafeFilterValue(ValueError):
    """The value cannot be put in a ``sqlfilters`` expression without changing its meaning: use another
    lookup."""


class FilterSyntaxError(ValueError):
    """Dolibarr would answer 400 (bad syntax) or the database would fail on the forged SQL."""


_FIELD = re.compile(r"^[A-Za-z0-9_.]+$")
# Never inside a value: grammar (parentheses), explode (colon), WAF (double quote, &-entities, tags).
_ALWAYS_REFUSED = frozenset('():"&<>')


def _check_field(field: str) -> None:
    if not _FIELD.match(field):
        raise ValueError(f"not a Dolibarr sqlfilters field name: {field!r}")


def _refused_char(value: str, extra: frozenset[str] = frozenset()) -> str | None:
    for char in value:
        code = ord(char)
        if char in _ALWAYS_REFUSED or char in extra:
            return char
        if code < 0x20 or 0x7F <= code <= 0x9F or code > 0xFFFF or 0xD800 <= code <= 0xDFFF:
            return char
        if char in "\u2028\u2029\ufeff":
            return char
    return None


def sql_eq(field: str, value: str | int) -> str:
    """``(field:=:'value')`` (an int is written bare). Raises :class:`UnsafeFilterValue` when the value cannot
    be expressed exactly."""
    _check_field(field)
    if isinstance(value, bool):
        raise TypeError("a boolean is not a sqlfilters value; pass 0 or 1")
    if isinstance(value, int):
        expression = f"({field}:=:{value})"
    else:
        bad = _refused_char(value)
        if bad is not None:
            raise UnsafeFilterValue(f"character {bad!r} cannot be expressed in a Dolibarr sqlfilters value")
        expression = f"({field}:=:'{value}')"
    _check_waf(expression)
    return expression


def escape_like(prefix: str) -> str:
    """``\\``, ``%`` and ``_`` made literal for MySQL's LIKE (whose escape character is the backslash)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def sql_like_prefix(field: str, prefix: str) -> str:
    """``(field:like:'prefix%')`` matching exactly the values that start with ``prefix``."""
    _check_field(field)
    bad = _refused_char(prefix, frozenset("'"))
    if bad is not None:
        raise UnsafeFilterValue(f"character {bad!r} cannot be expressed in a Dolibarr sqlfilters like prefix")
    expression = f"({field}:like:'{escape_like(prefix)}%')"
    _check_waf(expression)
    return expression


def combine_and(*expressions: str) -> str:
    """``((a) and (b))``; one expression is returned unchanged."""
    parts = [e for e in expressions if e]
    if not parts:
        raise ValueError("combine_and needs at least one expression")
    if len(parts) == 1:
        return parts[0]
    combined = "(" + " and ".join(parts) + ")"
    _check_waf(combined)  # 'union' in one value and 'select' in another are refused together
    return combined


def safe_like_prefix(field: str, value: str) -> str:
    """The longest prefix of ``value`` that :func:`sql_like_prefix` accepts ('' when none): a lookup can scan
    ``like 'prefix%'`` and keep the exact matches on its side."""
    end = 0
    for char in value:
        if _refused_char(char, frozenset("'")) is not None:
            break
        end += 1
    while end > 0:
        try:
            sql_like_prefix(field, value[:end])
        except UnsafeFilterValue:
            end -= 1
            continue
        return value[:end]
    return ""


# --------------------------------------------------------------------------------------------- WAF model

_WAF_GET = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"delete[/*\s]*from",
        r"create[/*\s]*table",
        r"insert[/*\s]*into",
        r"select[/*\s]*from",
        r"from[/*\s]*dual",
        r"into[/*\s]*(outfile|dumpfile)",
        r"user[/*\s]*\(",
        r"information_schema",
        r"<svg",
        r"update[^&=\w].*set.+=",
        r"union.+select",
    )
]
_WAF_ANY = [
    re.compile(p, re.IGNORECASE | re.DOTALL)
    for p in (
        r"updatexml\(",
        r"(\.\.%2f)+",
        r"</textarea",
        r"<embed",
        r"<audio",
        r"<iframe",
        r"<object",
        r"<script",
        r"Set\.constructor",
        r"<style",
        r"base\s+href",
        r"=data:",
        r"&#58;|&#0000058|&#x3A",
        r"j\s*a\s*v\s*a\s*s\s*c\s*r\s*i\s*p\s*t\s*:",
        r"vbscript\s*:",
        r'"',
    )
]
_WAF_EVENTS = re.compile(
    r"on(abort|after|animation|auxclick|before|blur|bounce|cancel|canplay|canplaythrough|change|click|close|"
    r"content|contextmenu|cuechange|copy|cut|dblclick|drag|drop|durationchange|emptied|end|ended|error|focus|"
    r"focusin|focusout|formdata|gotpointercapture|hashchange|input|invalid|key|load|lostpointercapture|mouse|"
    r"offline|online|pagehide|pageshow|pointer|paste|pause|play|playing|progress|ratechange|reset|resize|scroll|"
    r"select|search|seeked|seeking|show|stalled|start|submit|suspend|timeupdate|touch|transition|toggle|unload|"
    r"volumechange|waiting|wheel|repeat|begin|finish)[a-z]*\s*=",
    re.IGNORECASE,
)
_WAF_SPACE_AT = re.compile(r"\s@@")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def waf_refuses(value: str) -> bool:
    """True when Dolibarr's injection filter would refuse ``value`` as a GET parameter (HTTP 403 page).

    Modelled on ``testSqlAndScriptInject($val, 1)``: entities decoded repeatedly, HTML comments and tabs/new
    lines removed, then the SQL, script and event-handler patterns."""
    if _CONTROL.search(value):
        return True
    decoded = value
    while True:
        before = decoded
        decoded = html.unescape(decoded)
        decoded = re.sub(r"<!--[^>]*-->", "", decoded)
        decoded = re.sub(r"[\r\n\t]", "", decoded)
        if decoded == before:
            break
    if _CONTROL.search(decoded) or _WAF_SPACE_AT.search(decoded):
        return True
    if any(p.search(decoded) for p in _WAF_GET) or any(p.search(decoded) for p in _WAF_ANY):
        return True
    if _WAF_EVENTS.search(decoded):
        return True
    return bool(_WAF_EVENTS.search(re.sub(r"<[^<]*>", "", decoded)))


def _check_waf(expression: str) -> None:
    if waf_refuses(expression):
        raise UnsafeFilterValue("Dolibarr's injection filter would refuse this sqlfilters expression")


# ------------------------------------------------------------------------------------------- server model


@dataclass(frozen=True)
class Compare:
    """One criterion as the database sees it. ``value`` is the string after SQL unescaping (a LIKE pattern for
    LIKE), or a number when Dolibarr cast the value (``numeric``), or None for NULL."""

    field: str
    operator: str  # "=", "<>", "<", ">", "<=", ">=", "LIKE", "NOT LIKE", "IS", "IS NOT", "IN", "NOT IN"
    value: str | Decimal | None
    numeric: bool = False


@dataclass(frozen=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True)
class Or:
    left: Node
    right: Node


Node = Compare | And | Or

_CRITERION = re.compile(r"\(([a-zA-Z0-9_.]+:[<>!=insotlke]+:[^()]+)\)", re.IGNORECASE)
_OPERATORS = {"NOTLIKE": "NOT LIKE", "ISNOT": "IS NOT", "NOTIN": "NOT IN", "!=": "<>"}
_VALID_OPERATORS = {"=", "<>", "<", ">", "<=", ">=", "LIKE", "NOT LIKE", "IS", "IS NOT", "IN", "NOT IN"}


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _php_number(text: str) -> Decimal:
    """PHP's ``(float)`` cast: the longest numeric prefix after leading spaces, else 0."""
    found = re.match(r"\s*([+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?)", text)
    try:
        return Decimal(found.group(1)) if found else Decimal(0)
    except InvalidOperation:  # pragma: no cover - the regex only lets numbers through
        return Decimal(0)


def _criterion(inner: str, explode_limit: int | None, trim_value: bool) -> Compare:
    parts = inner.split(":", 2) if explode_limit == 3 else inner.split(":")
    if len(parts) < 3:
        raise FilterSyntaxError(f"criterion without three parts: {inner!r}")
    field = re.sub(r"[^a-z0-9._]", "", parts[0].strip(), flags=re.IGNORECASE)
    operator = re.sub(r"[^a-z<>!=]", "", parts[1].strip(), flags=re.IGNORECASE).upper()
    operator = _OPERATORS.get(operator, operator)
    if operator not in _VALID_OPERATORS:
        raise FilterSyntaxError(f"operator {operator!r} forges invalid SQL")
    raw = parts[2].strip() if trim_value else parts[2]
    if operator in ("LIKE", "NOT LIKE"):
        quoted = re.fullmatch(r"'([^']*)'\n?", raw)
        # Not unquoted: the quotes become part of the pattern, escaped by $db->escape().
        return Compare(field, operator, quoted.group(1) if quoted else raw)
    if operator in ("IN", "NOT IN"):
        return Compare(field, operator, raw)
    quoted = re.fullmatch(r"'(.*)'\n?", raw)  # PCRE: '.' stops at new lines, '$' allows one final new line
    if quoted:
        return Compare(field, operator, quoted.group(1))
    if raw.upper() == "NULL":
        return Compare(field, operator, None)
    return Compare(field, operator, _php_number(raw), numeric=True)


def parse(expression: str, *, explode_limit: int | None = 3, trim_value: bool = False) -> Node:
    """How Dolibarr 20 reads ``expression``: raises :class:`FilterSyntaxError` where it would answer 400 or
    forge SQL the database refuses. ``explode_limit=None`` models forks that split criteria on every colon."""
    if expression == "":
        raise FilterSyntaxError("empty filter")
    text = expression if re.match(r"^\(.*\)$", expression) else f"({expression})"
    if not _balanced(text):
        raise FilterSyntaxError("wrong balance of parenthesis")
    skeleton = _CRITERION.sub("()", text)
    for word in ("and", "or", "AND", "OR", " "):
        skeleton = skeleton.replace(word, "")
    if re.search(r"[^()]", skeleton):
        raise FilterSyntaxError(f"bad syntax of the search string: {expression}")
    # Tokenise the text the way the forged SQL reads: criteria, parentheses, and/or.
    tokens: list[str | Compare] = []
    position = 0
    while position < len(text):
        found = _CRITERION.match(text, position)
        if found:
            tokens.append(_criterion(found.group(1), explode_limit, trim_value))
            position = found.end()
            continue
        char = text[position]
        if char in "()":
            tokens.append(char)
            position += 1
        elif char == " ":
            position += 1
        elif text.startswith(("and", "AND"), position):
            tokens.append("AND")
            position += 3
        elif text.startswith(("or", "OR"), position):
            tokens.append("OR")
            position += 2
        else:  # pragma: no cover - the skeleton check above rules this out
            raise FilterSyntaxError(f"unexpected {char!r}")
    node, rest = _parse_or(tokens)
    if rest:
        raise FilterSyntaxError("SQL syntax error after a complete condition")
    return node


def _parse_or(tokens: list[str | Compare]) -> tuple[Node, list[str | Compare]]:
    left, rest = _parse_and(tokens)
    while rest and rest[0] == "OR":
        right, rest = _parse_and(rest[1:])
        left = Or(left, right)
    return left, rest


def _parse_and(tokens: list[str | Compare]) -> tuple[Node, list[str | Compare]]:
    left, rest = _parse_atom(tokens)
    while rest and rest[0] == "AND":
        right, rest = _parse_atom(rest[1:])
        left = And(left, right)
    return left, rest


def _parse_atom(tokens: list[str | Compare]) -> tuple[Node, list[str | Compare]]:
    if not tokens:
        raise FilterSyntaxError("SQL syntax error: condition expected")
    head = tokens[0]
    if isinstance(head, Compare):
        return head, tokens[1:]
    if head == "(":
        node, rest = _parse_or(tokens[1:])
        if not rest or rest[0] != ")":
            raise FilterSyntaxError("SQL syntax error: ')' expected")
        return node, rest[1:]
    raise FilterSyntaxError(f"SQL syntax error near {head!r}")


def _like_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            out.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        index += 1
    return re.compile("".join(out), re.DOTALL)


def _mysql_number(text: str) -> Decimal:
    return _php_number(text)


def matches(node: Node, row: Mapping[str, object]) -> bool:
    """Whether a row (field -> value, fields named as in the filter, e.g. ``t.ref_ext``) satisfies ``node``,
    comparing strings exactly (a binary collation; real ``_ci`` collations match more, see the module)."""
    if isinstance(node, And):
        return matches(node.left, row) and matches(node.right, row)
    if isinstance(node, Or):
        return matches(node.left, row) or matches(node.right, row)
    actual = row.get(node.field)
    if node.value is None:
        is_null = actual is None
        return is_null if node.operator == "IS" else not is_null if node.operator == "IS NOT" else False
    if actual is None:
        return False
    if node.operator in ("LIKE", "NOT LIKE"):
        hit = _like_regex(str(node.value)).fullmatch(str(actual)) is not None
        return hit if node.operator == "LIKE" else not hit
    if node.numeric or isinstance(actual, int):
        left: Decimal | str = _mysql_number(str(actual))
        right: Decimal | str = node.value if isinstance(node.value, Decimal) else _mysql_number(node.value)
    else:
        left, right = str(actual), str(node.value)
    if node.operator == "=":
        return left == right
    if node.operator == "<>":
        return left != right
    if isinstance(left, Decimal) and isinstance(right, Decimal):
        return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}.get(
            node.operator, False
        )
    if isinstance(left, str) and isinstance(right, str):
        return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}.get(
            node.operator, False
        )
    return False  # pragma: no cover

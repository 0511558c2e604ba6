"""A PrestaShop 1.7.8.8 webservice simulator (``/api/...``) over an in-memory :class:`ShopData`.

It answers like the real webservice as captured in ``shared/reference/prestashop`` (WEBSERVICE.md and the
samples): Basic-auth or ``ws_key`` keys, XML by default and JSON with ``output_format=JSON`` or an
``Output-Format: JSON`` header, ``display`` / ``filter[...]`` / ``sort`` / ``limit`` / ``date=1`` /
``language`` / ``schema`` / ``id_shop``, the error codes and statuses (including the silent ``200 []`` ones),
the value types (ints as numbers, prices as 6-decimal strings, zero dates), multilingual fields, multishop
scoping and the product image endpoints. It is read-only: writes go through the :class:`ShopData` mutation
API, and the webservice key only has GET/HEAD permissions (a write answers 405 code 25, or 101 where
PrestaShop forbids the method). See ``docs/prestashop-simulator.md``.

Run it: ``python -m service.sandbox.prestashop_sim --port 9001 [--seed 1] [--products N] [--orders N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import bisect
import contextlib
import hashlib
import json
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from aiohttp import web

from service.sandbox import faults as faults_mod
from service.sandbox.faults import FaultPlan
from service.sandbox.prestashop_keyset import TableIndexes
from service.sandbox.shop_model import (
    RESOURCES,
    SPECIFIC_MANAGEMENT,
    Assoc,
    Field,
    Record,
    Resource,
    ShopData,
)

DEFAULT_KEY = "PS2DOLISIMULATORWEBSERVICEKEY001"
PSWS_VERSION = "1.7.8.8"
SHOP_KEY = web.AppKey("prestashop_shop", ShopData)
REALM = (
    'Basic realm="Welcome to PrestaShop Webservice, please enter the authentication key as the login. '
    'No password required."'
)
JSON_TYPE = "application/json"
XML_TYPE = "text/xml;charset=utf-8"
XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<prestashop xmlns:xlink="http://www.w3.org/1999/xlink">\n'
XML_FOOT = "</prestashop>\n"
IMAGE_TYPES = [(1, "cart_default"), (2, "small_default"), (3, "medium_default"), (4, "home_default"),
               (5, "large_default")]  # fmt: skip
_CLASS_NAMES = {
    "products": "Product",
    "combinations": "Combination",
    "categories": "Category",
    "carriers": "Carrier",
    "languages": "Language",
    "currencies": "Currency",
    "countries": "Country",
    "tax_rule_groups": "TaxRulesGroup",
    "product_options": "AttributeGroup",
    "product_option_values": "ProductAttribute",
    "stock_availables": "StockAvailable",
}
_PLACES = {"dec6": 6, "dec3": 3, "dec2": 2}
Fmt = Literal["json", "xml"]


# ----------------------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------------------
class WsError(Exception):
    """A webservice error: HTTP status and ``(code, message)`` pairs rendered as an error body."""

    def __init__(
        self, status: int, *errors: tuple[int, str], headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(errors[0][1] if errors else str(status))
        self.status = status
        self.errors = list(errors)
        self.headers = dict(headers or {})


class EmptyResult(Exception):
    """The query failed in SQL (unknown column, negative limit...): PrestaShop answers an empty 200 list."""


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _closest(value: str, words: Sequence[str]) -> str:
    """WebserviceRequest::getClosest: the smallest levenshtein distance, the later word on ties."""
    best, shortest = "", -1
    for word in words:
        lev = _levenshtein(value, word)
        if lev == 0:
            return word
        if lev <= shortest or shortest < 0:
            best, shortest = word, lev
    return best


def _did_you_mean(status: int, label: str, value: str, available: Sequence[str], code: int) -> WsError:
    full = ' The full list is: "' + '", "'.join(available) + '"' if len(available) > 1 else ""
    return WsError(status, (code, f'{label}. Did you mean: "{_closest(value, available)}"?{full}'))


# ----------------------------------------------------------------------------------------------------------
# values: MySQL-like comparisons, rendering
# ----------------------------------------------------------------------------------------------------------
_NUM_RE = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)")
_INT_RE = re.compile(r"^\s*([+-]?\d+)")
_DT_RE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2}))?)?$")
_PHP_NUMERIC = re.compile(r"^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$")


def php_int(text: str) -> int:
    """PHP ``(int)`` cast of a string: leading digits, else 0."""
    m = _INT_RE.match(text)
    return int(m.group(1)) if m else 0


def mysql_number(text: str) -> Decimal:
    """How MySQL reads a string compared with a number column: its numeric prefix, else 0."""
    m = _NUM_RE.match(text)
    if not m:
        return Decimal(0)
    try:
        return Decimal(m.group(1))
    except InvalidOperation:  # pragma: no cover - the regex only lets numbers through
        return Decimal(0)


def fold(text: str) -> str:
    """utf8mb4_general_ci-like key: case and accent insensitive, trailing spaces ignored (PAD SPACE)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().rstrip(" ")


def canonical_datetime(text: str) -> str | None:
    """A date or datetime literal as ``YYYY-MM-DD HH:MM:SS``; None when MySQL would not read it as one."""
    m = _DT_RE.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    return f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}"


def _fmt_dec(value: Any, places: int) -> str:
    d = value if isinstance(value, Decimal) else Decimal(str(value))
    return f"{d:.{places}f}"


def db_text(f: Field, value: Any) -> str | None:
    """The text MySQL holds for a stored value (LIKE operand, XML content)."""
    if value is None:
        return None
    if f.kind in _PLACES:
        return _fmt_dec(value, _PLACES[f.kind])
    if value is False:
        return ""
    if value is True:
        return "1"
    return str(value)


def _scalar_json(f: Field, value: Any) -> Any:
    kind = f.kind
    if value is None or kind == "null":
        return None
    if kind in ("int", "nint"):
        if isinstance(value, bool):
            return int(value)
        return int(value) if isinstance(value, (int, Decimal)) or str(value).lstrip("-").isdigit() else value
    if kind in _PLACES:
        return _fmt_dec(value, _PLACES[kind])
    if kind == "raw":
        return value
    return str(value)


class Column:
    """Comparison semantics of one field (number, collated string or datetime), as MySQL applies them."""

    def __init__(self, f: Field) -> None:
        self.field = f
        if f.kind in ("int", "nint", "dec6", "dec3", "dec2", "null"):
            self.kind = "num"
        elif f.kind in ("date", "datetime"):
            self.kind = "dt"
        else:
            self.kind = "str"

    def key(self, value: Any) -> Any:
        if value is None:
            return None
        if self.kind == "num":
            if isinstance(value, (int, Decimal)):
                return Decimal(value)
            return mysql_number(str(value))
        if self.kind == "dt":
            return canonical_datetime(str(value)) or str(value)
        return fold(str(value))

    def operand(self, text: str) -> Any:
        if self.kind == "num":
            return mysql_number(text)
        if self.kind == "dt":
            return canonical_datetime(text)
        return fold(text)

    def sort_key(self, value: Any) -> tuple[int, Any]:
        k = self.key(value)
        return (0, "") if k is None else (1, k)


def fold_like(text: str) -> str:
    """Case and accent insensitive, trailing spaces kept (LIKE does not pad)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _like_regex(pattern: str) -> re.Pattern[str]:
    parts = [".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in fold_like(pattern)]
    return re.compile("^" + "".join(parts) + "$", re.S)


_FILTER_RE = re.compile(r"^(.*)\[(.*)\](.*)$")
_BETWEEN_RE = re.compile(r"^([\d.:\-\s]+),([\d.:\-\s]+)$")


def parse_filter(value: str) -> list[tuple[str, tuple[str, ...]]]:
    """SQLUtils::getSQLRetrieveFilter: the conditions a filter value produces (an empty list: none at all)."""
    m = _FILTER_RE.match(value)
    if not m:
        return [("eq", (value,))]
    before, inner, after = m.groups()
    if before == "%" or after == "%":
        return [("like", (before + inner + after,))]
    if before == "" and after == "":
        if inner.find("|") > 0:
            return [("in", tuple(inner.split("|")))]
        between = _BETWEEN_RE.match(inner)
        if between:
            lo, hi = between.group(1), between.group(2)
            if _PHP_NUMERIC.match(lo) and _PHP_NUMERIC.match(hi):
                pair = sorted((lo, hi), key=lambda v: Decimal(v.strip()))
            else:
                pair = sorted((lo, hi))
            return [("between", (pair[0], pair[1]))]
        return [("eq", (inner,))]
    if before == ">":
        return [("gt", (inner,))]
    if before == "<":
        return [("lt", (inner,))]
    if before == "!":
        return [("ne", (v,)) for v in inner.split("|")]
    return []


Predicate = Callable[[Any], bool]
Row = tuple[Record, Record]  # (main row, the row shown: products merged with the context shop's row)
Sorter = Callable[[list[Row]], None]


def compile_condition(col: Column, op: str, operands: tuple[str, ...]) -> Predicate:
    """A predicate on the stored value of one row (NULL never matches, as in SQL)."""
    if op == "like":
        rx = _like_regex(operands[0])
        f = col.field

        def like(value: Any) -> bool:
            text = db_text(f, value)
            return text is not None and rx.match(fold_like(text)) is not None

        return like
    parsed = [col.operand(o) for o in operands]
    key = col.key
    if op == "in":
        wanted = {p for p in parsed if p is not None}
        return lambda v: (k := key(v)) is not None and k in wanted
    if any(p is None for p in parsed):
        return lambda v: False
    if op == "eq":
        target = parsed[0]
        return lambda v: (k := key(v)) is not None and k == target
    if op == "ne":
        target = parsed[0]
        return lambda v: (k := key(v)) is not None and k != target
    if op == "gt":
        target = parsed[0]
        return lambda v: (k := key(v)) is not None and k > target
    if op == "lt":
        target = parsed[0]
        return lambda v: (k := key(v)) is not None and k < target
    lo, hi = parsed
    return lambda v: (k := key(v)) is not None and lo <= k <= hi


def _checked(
    ids: list[int],
    keys: list[Any],
    start: int,
    end: int,
    table: Mapping[int, Record],
    name: str,
    key: Predicate,
) -> Iterable[int | None]:
    """``ids[start:end]``, or None in place of a row whose ``name`` has another key than its entry (a row
    edited by hand without ``shop.touch()``: the index is stale) or that is gone."""
    for i in range(start, end):
        rid = ids[i]
        rec = table.get(rid)
        if rec is None or key(rec.get(name)) != keys[i]:
            yield None
            return
        yield rid


def _sort_key(f: Field, idx: int, lang: int) -> Callable[[tuple[Record, Record]], tuple[int, Any]]:
    """ORDER BY on one field: NULLs first, numbers numerically, strings by collation (i18n: first language)."""
    name = f.name
    if f.i18n:
        col = Column(Field(name, "str"))
        return lambda row: col.sort_key((row[0].get(name) or {}).get(lang))
    col = Column(f)
    return lambda row: col.sort_key(row[idx].get(name))


# ----------------------------------------------------------------------------------------------------------
# request parsing
# ----------------------------------------------------------------------------------------------------------
@dataclass
class Params:
    """Query parameters the way PHP's ``$_GET`` holds them (last value wins, ``filter[...]`` nested)."""

    flat: dict[str, str] = field(default_factory=dict)
    filters: dict[str, str | dict[str, str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, items: Iterable[tuple[str, str]]) -> Params:
        out = cls()
        for key, value in items:
            m = re.match(r"^filter\[([^\]]*)\](.*)$", key)
            if m:
                name, rest = m.group(1), m.group(2)
                sub = re.match(r"^\[([^\]]*)\]", rest)
                if sub:
                    current = out.filters.get(name)
                    nested = current if isinstance(current, dict) else {}
                    nested[sub.group(1)] = value
                    out.filters[name] = nested
                else:
                    out.filters[name] = value
            else:
                out.flat[key] = value
        return out

    def get(self, name: str) -> str | None:
        return self.flat.get(name)


def parse_display(text: str) -> dict[str, list[str] | None]:
    """WebserviceRequest::parseDisplayFields: ``a,b,assoc[x,y]`` -> ``{a: None, b: None, assoc: [x, y]}``."""
    parts: list[str] = []
    level, tmp = 0, ""
    for ch in text:
        if ch == "," and level == 0:
            parts.append(tmp)
            tmp = ""
        else:
            tmp += ch
        if ch == "[":
            level += 1
        elif ch == "]":
            level -= 1
    if tmp != "":
        parts.append(tmp)
    fields: dict[str, list[str] | None] = {}
    for part in parts:
        bracket = part.find("[")
        name = (part if bracket < 0 else part[:bracket]).strip()
        fields.setdefault(name, None)
        if bracket >= 0:
            sub = part[bracket + 1 : len(part) - 1]
            current = fields[name] or []
            fields[name] = current + sub.split(",")
    return fields


# ----------------------------------------------------------------------------------------------------------
# rendering
# ----------------------------------------------------------------------------------------------------------
def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _xml_attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _json_bytes(obj: Any) -> bytes:
    # PHP's json_encode escapes "/" and non-ASCII characters; "/" only occurs inside JSON strings
    return json.dumps(obj, separators=(",", ":")).replace("/", "\\/").encode("ascii")


@dataclass
class View:
    """The shop context of one request: shops, languages, base URL and the display knobs."""

    shop: ShopData
    spec: Resource
    langs: list[int]
    base: str  # http://host/api/
    ctx_shop: int
    shop_ids: list[int]
    all_shops: bool
    php8_null_associations: bool = False

    # --- values ---------------------------------------------------------------------------------------
    def row_view(self, rec: Record) -> Record:
        """What the webservice shows for a row: products merged with the context shop's product_shop row."""
        if self.spec.name != "products":
            return rec
        rows = self.shop.product_shop.get(int(rec["id"]))
        if not rows:
            return rec
        row = rows.get(self.ctx_shop)
        if row is None:
            row = rows[min(rows)]
        return {**rec, **row}

    def value(self, f: Field, rec: Record) -> Any:
        name = f.name
        res = self.spec.name
        if res == "products":
            if name == "id_default_image":
                cover = self.shop.cover_image(int(rec["id"]))
                return cover if cover is not None else ""
            if name == "id_default_combination":
                return self.shop.default_combination(int(rec["id"]))
            if name == "quantity":
                return 0
        elif res == "categories" and name == "nb_products_recursive":
            return self.shop.nb_products_recursive().get(int(rec["id"]), 0)
        return rec.get(name)

    def i18n_values(self, value: Any) -> list[tuple[int, str]]:
        values = value if isinstance(value, Mapping) else {}
        return [(lid, str(values.get(lid, "") or "")) for lid in self.langs]

    def json_field(self, f: Field, rec: Record) -> Any:
        value = self.value(f, rec)
        if f.i18n:
            pairs = self.i18n_values(value)
            if len(pairs) == 1:
                return pairs[0][1]
            return [{"id": str(lid), "value": text} for lid, text in pairs]
        return _scalar_json(f, value)

    # --- associations ---------------------------------------------------------------------------------
    def association_rows(self, assoc: Assoc, rec: Record) -> list[dict[str, Any]]:
        shop, idx = self.shop, self.shop.index()
        rid = int(rec["id"])
        res, name = self.spec.name, assoc.name
        ids: list[int] = []
        if res == "products":
            if name == "categories":
                cats = shop.tables["categories"]
                ids = [c for c in rec.get("_categories", []) if c in cats]
            elif name == "images":
                ids = idx.images_by_product.get(rid, [])
            elif name == "combinations":
                ids = idx.combinations_by_product.get(rid, [])
            elif name == "product_option_values":
                seen: dict[int, None] = {}
                for cid in idx.combinations_by_product.get(rid, []):
                    for vid in shop.tables["combinations"][cid].get("_option_values", []):
                        seen.setdefault(vid, None)
                ids = list(seen)
            elif name == "product_features":
                return [{"id": f, "id_feature_value": v} for f, v in rec.get("_features", [])]
            elif name == "stock_availables":
                rows = []
                stock = shop.tables["stock_availables"]
                for sid in idx.stock_by_product.get(rid, []):
                    row = stock[sid]
                    if self.stock_in_scope(row):
                        rows.append({"id": sid, "id_product_attribute": row["id_product_attribute"]})
                return rows
            elif name in ("tags", "accessories", "attachments"):
                ids = list(rec.get("_" + name, []))
            elif name == "product_bundle":
                return [dict(r) for r in rec.get("_bundle", [])]
        elif res == "combinations":
            ids = list(rec.get("_option_values" if name == "product_option_values" else "_images", []))
        elif res == "categories":
            ids = (
                idx.children_by_category.get(rid, [])
                if name == "categories"
                else idx.products_by_category.get(rid, [])
            )
        elif res == "customers":
            ids = list(rec.get("_groups", []))
        elif res == "product_options":
            ids = idx.values_by_group.get(rid, [])
        elif res == "orders":
            details = shop.tables["order_details"]
            out = []
            for did in idx.details_by_order.get(rid, []):
                d = details[did]
                row = {"id": did}
                for f in assoc.fields:
                    row[f.name] = d.get(f.name, 0 if f.name == "id_customization" else "")
                out.append(row)
            return out
        elif res == "order_details":
            return [{"id": t["id_tax"]} for t in shop.order_detail_taxes.get(rid, [])]
        elif res == "order_slip":
            return [dict(r) for r in shop.slip_details.get(rid, [])]
        return [{"id": i} for i in ids]

    def stock_in_scope(self, row: Record) -> bool:
        for s in self.shop_ids:
            if row["id_shop"] == s or (
                row["id_shop"] == 0 and row["id_shop_group"] == self.shop.shop_group_of(s)
            ):
                return True
        return False

    def json_associations(self, rec: Record, wanted: Mapping[str, list[str] | None] | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for assoc in self.spec.associations:
            if wanted is not None and assoc.name not in wanted:
                continue
            if wanted is not None and self.php8_null_associations and not assoc.declares_fields:
                # a partial display (display=[id,product_option_values[id]]) drops them altogether: no key,
                # and no "associations" when nothing else is left (live 1.7.8.8 on PHP 8)
                continue
            rows = self.association_rows(assoc, rec)
            if not rows:
                continue
            sub = wanted.get(assoc.name) if wanted is not None else None
            if self.php8_null_associations and not assoc.declares_fields:
                out[assoc.name] = [[None] for _ in rows]
                continue
            fields = [f for f in assoc.fields if sub is None or f.name in sub]
            rendered = []
            for row in rows:
                item: dict[str, Any] = {"id": int(row["id"])}
                for f in fields:
                    item[f.name] = _scalar_json(f, row.get(f.name))
                rendered.append(item)
            out[assoc.name] = rendered
        return out

    # --- JSON ---------------------------------------------------------------------------------------------
    def json_entity(self, rec: Record, display: Mapping[str, list[str] | None] | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in self.spec.fields:
            if display is None or f.name in display:
                out[f.name] = self.json_field(f, rec)
        wanted = None if display is None else {k: v for k, v in display.items() if v is not None}
        if self.spec.associations and (display is None or wanted):
            assocs = self.json_associations(rec, wanted)
            if assocs:
                out["associations"] = assocs
        return out

    # --- XML ----------------------------------------------------------------------------------------------
    def xml_href(self, f: Field, rec: Record, value: Any) -> str:
        if f.xlink is None:
            return ""
        if f.name.startswith("id_") and not value:
            return ""
        if f.xlink == "images/products":
            return f' xlink:href="{self.base}images/products/{rec["id"]}/{value}"'
        return f' xlink:href="{self.base}{f.xlink}/{value}"'

    def xml_field(self, f: Field, rec: Record, out: list[str]) -> None:
        value = self.value(f, rec)
        if f.i18n:
            nodes = "".join(
                f'<language id="{lid}" xlink:href="{self.base}languages/{lid}">{_cdata(text)}</language>'
                for lid, text in self.i18n_values(value)
            )
            out.append(f"\t<{f.name}>{nodes}</{f.name}>\n")
            return
        text = db_text(f, value) or ""
        attrs = self.xml_href(f, rec, value) + (' notFilterable="true"' if f.getter else "")
        out.append(f"\t<{f.name}{attrs}>{_cdata(text)}</{f.name}>\n")

    def xml_associations(
        self, rec: Record, wanted: Mapping[str, list[str] | None] | None, out: list[str]
    ) -> None:
        out.append("<associations>\n")
        for assoc in self.spec.associations:
            if wanted is not None and assoc.name not in wanted:
                continue
            rows = self.association_rows(assoc, rec)
            kind = ' virtualEntity="true"' if assoc.virtual else f' api="{assoc.api}"'
            head = f'<{assoc.name} nodeType="{assoc.node}"{kind}'
            if not rows:
                out.append(head + "/>\n")
                continue
            out.append(head + ">\n")
            sub = wanted.get(assoc.name) if wanted is not None else None
            fields = [f for f in assoc.fields if sub is None or f.name in sub]
            for row in rows:
                rid = row["id"]
                if assoc.virtual:
                    out.append(f"\t<{assoc.node}>\n")
                elif assoc.node == "image" and self.spec.name in ("products", "combinations"):
                    pid = rec["id"] if self.spec.name == "products" else rec["id_product"]
                    out.append(f'\t<{assoc.node} xlink:href="{self.base}images/products/{pid}/{rid}">\n')
                else:
                    out.append(f'\t<{assoc.node} xlink:href="{self.base}{assoc.api}/{rid}">\n')
                if self.php8_null_associations and not assoc.declares_fields:
                    # renderFlatAssociation under PHP 8: the field is keyed 0, the id is only in xlink:href;
                    # a partial display leaves the element empty (live 1.7.8.8)
                    if wanted is None:
                        out.append("\t<0><![CDATA[]]></0>\n")
                else:
                    out.append(f"\t<id>{_cdata(str(rid))}</id>\n")
                for f in fields:
                    value = row.get(f.name)
                    href = self.xml_href(f, row, value)
                    out.append(f"\t<{f.name}{href}>{_cdata(db_text(f, value) or '')}</{f.name}>\n")
                out.append(f"\t</{assoc.node}>\n")
            out.append(f"</{assoc.name}>\n")
        out.append("</associations>\n")

    def xml_entity(self, rec: Record, display: Mapping[str, list[str] | None] | None, out: list[str]) -> None:
        node = self.spec.single_key
        out.append(f"<{node}>\n")
        for f in self.spec.fields:
            if display is None or f.name in display:
                self.xml_field(f, rec, out)
        wanted = None if display is None else {k: v for k, v in display.items() if v is not None}
        if self.spec.associations and (display is None or wanted):
            self.xml_associations(rec, wanted, out)
        out.append(f"</{node}>\n")


# ----------------------------------------------------------------------------------------------------------
# the request handler
# ----------------------------------------------------------------------------------------------------------
@dataclass
class _Answer:
    status: int
    body: bytes | None
    content_type: str | None
    headers: dict[str, str] = field(default_factory=dict)


class PrestaShopSimulator:
    """The webservice behind ``/api``: one instance per app, reading the shop on every request."""

    def __init__(self, shop: ShopData, key: str, *, php8_null_associations: bool = False) -> None:
        self.shop = shop
        self.key = key
        self.php8_null_associations = php8_null_associations
        self.indexes = TableIndexes(shop)

    # --- entry points --------------------------------------------------------------------------------------
    async def handle_api(self, request: web.Request) -> web.StreamResponse:
        tail = request.match_info.get("tail", "")
        return self._respond(request, tail.lstrip("/"), time.perf_counter())

    async def handle_dispatcher(self, request: web.Request) -> web.StreamResponse:
        return self._respond(request, request.query.get("url", ""), time.perf_counter())

    def _respond(self, request: web.Request, url: str, started: float) -> web.StreamResponse:
        params = Params.parse(request.query.items())
        fmt = self._format(request, params)
        key = self._key(request, params)
        if key is None:
            resp = web.Response(
                status=401, text="401 Unauthorized", content_type="text/html", charset="utf-8"
            )
            resp.headers["WWW-Authenticate"] = REALM
            return resp
        try:
            answer = self._dispatch(request, url, params, fmt, key)
        except WsError as err:
            answer = self._error_answer(err, fmt)
        except EmptyResult:
            answer = self._empty_list_answer(fmt, url)
        return self._finish(answer, started)

    def _finish(self, answer: _Answer, started: float) -> web.Response:
        headers = {
            "Access-Time": str(self.shop.unix_now()),
            "X-Powered-By": "PrestaShop Webservice",
            "PSWS-Version": PSWS_VERSION,
        }
        elapsed = round(time.perf_counter() - started, 3)
        headers["Execution-Time"] = str(int(elapsed)) if elapsed == int(elapsed) else str(elapsed)
        if answer.status == 200 and answer.body:
            headers["Content-Sha1"] = hashlib.sha1(answer.body, usedforsecurity=False).hexdigest()
        headers.update(answer.headers)
        if answer.body is None or answer.content_type is None:
            resp = web.Response(status=answer.status, headers=headers)
            resp.headers.pop("Content-Type", None)
            return resp
        headers["Content-Type"] = answer.content_type
        return web.Response(status=answer.status, body=answer.body, headers=headers)

    # --- the webservice switched off (the fault plan's ``webservice_off``) ---------------------------------
    WEBSERVICE_OFF = "The PrestaShop webservice is disabled. Please activate it in the PrestaShop Back Office"

    async def webservice_off(self, request: web.Request) -> web.StreamResponse | None:
        """``PS_WEBSERVICE`` = 0: WebserviceRequest::isActivated(), the first of webserviceChecks() (before the
        key is checked), answers 503 with error 22 in the asked format; a request without any key still gets
        dispatcher.php's 401 first (None: the simulator answers it)."""
        started = time.perf_counter()
        params = Params.parse(request.query.items())
        if self._key(request, params) is None:
            return None
        fmt = self._format(request, params)
        return self._finish(self._error_answer(WsError(503, (22, self.WEBSERVICE_OFF)), fmt), started)

    # --- request basics ----------------------------------------------------------------------------------
    @staticmethod
    def _format(request: web.Request, params: Params) -> Fmt:
        value = (
            request.headers.get("Io-Format")
            or request.headers.get("Output-Format")
            or params.get("output_format")
            or params.get("io_format")
        )
        return "json" if value == "JSON" else "xml"

    @staticmethod
    def _key(request: web.Request, params: Params) -> str | None:
        if "ws_key" in params.flat:
            return params.flat["ws_key"]
        auth = request.headers.get("Authorization", "")
        if auth[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                return None
            return decoded.split(":", 1)[0]
        return None

    def _error_answer(self, err: WsError, fmt: Fmt) -> _Answer:
        if fmt == "json":
            body = _json_bytes({"errors": [{"code": code, "message": msg} for code, msg in err.errors]})
            return _Answer(err.status, body, JSON_TYPE, err.headers)
        parts = ["<errors>\n"]
        for code, msg in err.errors:
            parts.append(
                f"<error>\n<code>{_cdata(str(code))}</code>\n<message>{_cdata(msg)}</message>\n</error>\n"
            )
        parts.append("</errors>\n")
        return _Answer(err.status, (XML_HEAD + "".join(parts) + XML_FOOT).encode(), XML_TYPE, err.headers)

    def _empty_list_answer(self, fmt: Fmt, url: str) -> _Answer:
        if fmt == "json":
            return _Answer(200, b"[]", JSON_TYPE)
        spec = RESOURCES.get(url.split("/")[0])
        node = spec.list_key if spec else "resources"
        return _Answer(200, f"{XML_HEAD}<{node}>\n</{node}>\n{XML_FOOT}".encode(), XML_TYPE)

    def _authenticate(self, key: str) -> None:
        key = key.strip()
        if key == "":
            raise WsError(401, (17, "Authentication key is empty"), headers={"WWW-Authenticate": REALM})
        if len(key) != 32:
            raise WsError(401, (18, "Invalid authentication key format"), headers={"WWW-Authenticate": REALM})
        if key != self.key:
            raise WsError(
                401,
                (20, "Authentification key is not active"),
                (21, "No permission for this authentication key"),
                headers={"WWW-Authenticate": REALM},
            )

    def _shop_context(self, params: Params) -> tuple[list[int], int, bool]:
        """``(shop ids, context shop, all shops?)`` from ``id_shop`` / ``id_shop_group`` (webserviceChecks)."""
        shop = self.shop
        group = params.get("id_shop_group") or params.get("id_group_shop")
        if group is not None and _PHP_NUMERIC.match(group):
            ids = shop.shops_in_group(php_int(group))
            if not ids:
                raise WsError(500, (999, "This shop group doesn't have shops"))
            return ids, ids[0] if shop.default_shop_id not in ids else shop.default_shop_id, False
        id_shop = params.get("id_shop")
        if id_shop is None:
            return [shop.default_shop_id], shop.default_shop_id, False
        if id_shop != "all" and _PHP_NUMERIC.match(id_shop):
            sid = php_int(id_shop)
            if sid not in shop.tables["shops"]:
                raise WsError(403, (132, "No permission for this key on this shop"))
            return [sid], sid, False
        if id_shop == "all":
            return shop.shop_ids(), shop.default_shop_id, True
        raise WsError(404, (999, "This shop id does not exist"))

    def _languages(self, params: Params) -> list[int]:
        """WebserviceRequest::filterLanguage."""
        value = params.get("language")
        existing = set(self.shop.tables["languages"])
        if value is None:
            return self.shop.lang_ids
        errors: list[tuple[int, str]] = []
        wanted: list[str] = []
        if _PHP_NUMERIC.match(value):
            wanted = [str(php_int(value))]
        elif value.startswith("[") and value.endswith("]"):
            inner = value[1:-1]
            if ("|" in inner) != ("," in inner):
                if "|" in inner:
                    wanted = inner.split("|")
                else:
                    bounds = inner.split(",")
                    if len(bounds) != 2:
                        errors.append((78, "A range value for a language must contains only 2 values"))
                    else:
                        wanted = [str(i) for i in range(php_int(bounds[0]), php_int(bounds[1]) + 1)]
            else:
                m = re.search(r"\[(\d)+\]", value)
                if m:
                    wanted = [m.group(1)]
        else:
            errors.append((79, "language value is wrong"))
        if not errors and any(not _PHP_NUMERIC.match(w) for w in wanted[1:]):
            errors.append((80, "Language ID must be numeric"))
        langs = [php_int(w) for w in wanted if _PHP_NUMERIC.match(w) and php_int(w) in existing]
        if errors or not langs:
            raise WsError(400, *errors, (81, "language is not available"))
        return langs

    # --- dispatch ----------------------------------------------------------------------------------------
    def _dispatch(self, request: web.Request, url: str, params: Params, fmt: Fmt, key: str) -> _Answer:
        self._authenticate(key)
        shop_ids, ctx_shop, all_shops = self._shop_context(params)
        langs = self._languages(params)
        segments = url.split("/")
        name = segments[0]
        method = request.method.upper()
        if name != "" and name not in RESOURCES:
            raise _did_you_mean(400, f'Resource of type "{name}" does not exists', name, list(RESOURCES), 27)
        if method not in ("GET", "PUT", "POST", "PATCH", "DELETE", "HEAD"):
            raise WsError(405, (23, f"Method {method} is not valid"))
        if name and method in RESOURCES[name].forbidden:
            raise WsError(405, (101, f"Method {method} is not allowed for the resource {name}"))
        if method not in ("GET", "HEAD"):
            suffix = f" for the resource {name}" if name else ""
            raise WsError(405, (25, f"Method {method} is not allowed{suffix} with this authentication key"))
        base = f"{request.scheme}://{request.host}/api/"
        if name == "":
            return self._resources_list(fmt, base)
        if name == "images":
            return self._images(segments, base)
        spec = RESOURCES[name]
        if name in SPECIFIC_MANAGEMENT:
            raise WsError(
                501, (124, f'The specific management class is not implemented for the "{name}" entity.')
            )
        view = View(self.shop, spec, langs, base, ctx_shop, shop_ids, all_shops, self.php8_null_associations)
        if len(segments) > 1 and segments[1] != "":
            return self._single(view, segments[1], params, fmt)
        return self._list(view, params, fmt)

    def _resources_list(self, fmt: Fmt, base: str) -> _Answer:
        if fmt == "json":
            return _Answer(200, _json_bytes(list(RESOURCES)), JSON_TYPE)
        name = _xml_attr(self.shop.config("PS_SHOP_NAME") or "")
        out = [f'<api shopName="{name}">\n']
        perms = 'get="true" put="false" post="false" delete="false" head="true"'
        for res, spec in RESOURCES.items():
            href = f'xlink:href="{base}{res}"'
            out.append(f"<{res} {href} {perms}>\n")
            out.append(f"<description {href} {perms}>{spec.description}</description>\n")
            if res not in SPECIFIC_MANAGEMENT:
                out.append(f'<schema xlink:href="{base}{res}?schema=blank" type="blank"/>\n')
                out.append(f'<schema xlink:href="{base}{res}?schema=synopsis" type="synopsis"/>\n')
            out.append(f"</{res}>\n")
        out.append("</api>\n")
        return _Answer(200, (XML_HEAD + "".join(out) + XML_FOOT).encode(), XML_TYPE)

    # --- display / filters / sort / limit ----------------------------------------------------------------
    @staticmethod
    def _display(spec: Resource, params: Params) -> tuple[str, dict[str, list[str] | None] | None]:
        """``("minimum"|"full"|"fields", fields)`` (WebserviceRequest::setFieldsToDisplay)."""
        value = params.get("display")
        if value is None or value == "minimum":
            return "minimum", None
        if value == "full":
            return "full", None
        m = re.match(r"^\[(.*)\]$", value, re.S)
        names = ", ".join(spec.field_names)
        if not m:
            raise WsError(
                400,
                (
                    36,
                    "The 'display' syntax is wrong. You can set 'full' or '[field_1,field_2,field_3,...]'. "
                    f"These are available: {names}",
                ),
            )
        fields = parse_display(m.group(1))
        for fname, sub in fields.items():
            if sub is None:
                bad = spec.field(fname) is None
            else:
                assoc = spec.assoc(fname)
                bad = assoc is None or any(s != "id" and s not in {f.name for f in assoc.fields} for s in sub)
            if bad:
                detail = f" (details : {sub!r})" if sub is not None else ""
                raise WsError(
                    400,
                    (
                        35,
                        f'Unable to display this field "{fname}{detail}". However, these are available: {names}',
                    ),
                )
        return "fields", fields

    @staticmethod
    def _available_filters(spec: Resource, date: bool) -> tuple[list[str], list[str]]:
        plain = [f.name for f in spec.fields if not f.i18n]
        i18n = [f.name for f in spec.fields if f.i18n]
        if date:
            for name in ("date_add", "date_upd"):
                if name not in plain:
                    plain.append(name)
        else:
            plain = [n for n in plain if n not in ("date_add", "date_upd")]
        return plain, i18n

    def _filters(self, view: View, params: Params, date: bool) -> list[Callable[[Record], bool]]:
        spec = view.spec
        plain, i18n = self._available_filters(spec, date)
        out: list[Callable[[Record], bool]] = []
        for name, value in params.filters.items():
            if name in ("sort", "limit"):
                continue
            if name not in plain:
                if isinstance(value, str) and value != "" and name in i18n:
                    f = spec.field(name)
                    assert f is not None
                    out.append(self._i18n_predicate(f, value, view.langs))
                    continue
                if isinstance(value, dict):
                    raise WsError(400, (31, "There is no existing linked table for this resource"))
                raise _did_you_mean(400, "This filter does not exist", name, plain, 32)
            if isinstance(value, dict):
                raise WsError(400, (31, "There is no existing linked table for this resource"))
            if value == "":
                raise WsError(400, (33, f'The filter "{name}" is malformed.'))
            f = spec.field(name)
            if f is not None and f.getter:
                raise WsError(
                    400,
                    (
                        34,
                        f'The field "{name}" is dynamic. It is not possible to filter GET query with this field.',
                    ),
                )
            if f is None or not f.column:
                raise EmptyResult  # unknown column (date=1 on a resource without dates, "new"...): SQL error
            out.append(self._predicate(f, value))
        return out

    @staticmethod
    def _predicate(f: Field, value: str) -> Callable[[Record], bool]:
        col = Column(f)
        preds = [compile_condition(col, op, operands) for op, operands in parse_filter(value)]
        name = f.name
        if not preds:
            return lambda rec: True
        if len(preds) == 1:
            only = preds[0]
            return lambda rec: only(rec.get(name))
        return lambda rec: all(p(rec.get(name)) for p in preds)

    @staticmethod
    def _i18n_predicate(f: Field, value: str, langs: list[int]) -> Callable[[Record], bool]:
        col = Column(Field(f.name, "str"))
        preds = [compile_condition(col, op, operands) for op, operands in parse_filter(value)]
        name = f.name

        def match(rec: Record) -> bool:
            values = rec.get(name) or {}
            return any(all(p(values.get(lid)) for p in preds) for lid in langs if lid in values)

        return match

    def _sort_keys(self, view: View, params: Params, date: bool) -> list[tuple[Field, bool, bool]] | None:
        """``sort=``'s keys: ``(field, descending?, read from the shown row?)``; None without ``sort``."""
        value = params.get("sort")
        if value is None:
            return None
        spec = view.spec
        m = re.match(r"^\[(.*)\]$", value, re.S)
        parts = m.group(1).split(",") if m else [value]
        plain, i18n = self._available_filters(spec, date)
        keys: list[tuple[Field, bool, bool]] = []
        for part in parts:
            pos = part.rfind("_")
            fname, direction = (part[:pos], part[pos + 1 :].upper()) if pos >= 0 else ("", "")
            if pos < 0 or direction not in ("ASC", "DESC"):
                raise WsError(
                    400,
                    (
                        37,
                        'The "sort" value has to be formed as this example: "field_ASC" or '
                        "'[field_1_DESC,field_2_ASC,field_3_ASC,...]' (\"field\" has to be an available field)",
                    ),
                )
            if fname not in plain and fname not in i18n:
                raise WsError(
                    400,
                    (
                        38,
                        "Unable to filter by this field. However, these are available: "
                        + ", ".join(plain)
                        + ", for i18n fields:"
                        + ", ".join(i18n),
                    ),
                )
            f = spec.field(fname)
            if f is None or not f.column:
                raise EmptyResult
            keys.append((f, direction == "DESC", f.shop))
        return keys

    @staticmethod
    def _sorter(view: View, keys: list[tuple[Field, bool, bool]] | None) -> Sorter | None:
        if keys is None:
            return None
        first_lang = view.langs[0]

        def sort(rows: list[tuple[Record, Record]]) -> None:
            for f, desc, use_view in reversed(keys):
                rows.sort(key=_sort_key(f, 1 if use_view else 0, first_lang), reverse=desc)

        return sort

    @staticmethod
    def _limit(params: Params) -> tuple[int, int | None] | None:
        value = params.get("limit")
        if value is None:
            return None
        parts = value.split(",")
        if len(parts) > 2:
            raise WsError(400, (39, 'The "limit" value has to be formed as this example: "5,25" or "10"'))
        first = php_int(parts[0])
        if len(parts) == 1:
            if first < 0:
                raise EmptyResult
            return 0, first
        count = php_int(parts[1])
        if first < 0 or count < 0:
            raise EmptyResult
        return first, count

    # --- scope -------------------------------------------------------------------------------------------
    def _in_scope(self, view: View, rec: Record) -> bool:
        scope = view.spec.shop_scope
        shop = self.shop
        if scope == "none":
            return True
        rid = int(rec["id"])
        if scope == "shop":
            return any(shop.associated(view.spec.name, rid, s) for s in view.shop_ids)
        if scope == "fk_shop":
            return view.stock_in_scope(rec)
        if view.all_shops:
            return True
        share = "share_order" if scope == "share_order" else "share_customer"
        for s in view.shop_ids:
            if shop.group_shares(s, share):  # type: ignore[arg-type]
                if rec["id_shop_group"] == shop.shop_group_of(s):
                    return True
            elif rec["id_shop"] == s:
                return True
        return False

    # --- list ----------------------------------------------------------------------------------------------
    def _list(self, view: View, params: Params, fmt: Fmt) -> _Answer:
        spec = view.spec
        schema = params.get("schema")
        if schema is not None:
            if schema not in ("blank", "synopsis"):
                raise WsError(
                    400,
                    (
                        28,
                        "Please select a schema of type 'synopsis' to get the whole schema informations (which fields "
                        "are required, which kind of content...) or 'blank' to get an empty schema to fill before "
                        "using POST request",
                    ),
                )
            return self._schema(view, schema, fmt)
        date = params.get("date") not in (None, "", "0")
        filters = self._filters(view, params, date)
        mode, display = self._display(spec, params)
        sort_keys = self._sort_keys(view, params, date)
        limit = self._limit(params)
        rows = self._keyset_rows(view, params, filters, sort_keys, limit)
        if rows is None:
            rows = self._generic_rows(view, filters, sort_keys, limit)
        if not rows:
            raise EmptyResult
        if fmt == "json":
            if mode == "minimum":
                return _Answer(
                    200, _json_bytes({spec.list_key: [{"id": int(r[0]["id"])} for r in rows]}), JSON_TYPE
                )
            shown = None if mode == "full" else display
            items = [view.json_entity(v, shown) for _, v in rows]
            return _Answer(200, _json_bytes({spec.list_key: items}), JSON_TYPE)
        out = [XML_HEAD, f"<{spec.list_key}>\n"]
        if mode == "minimum":
            for rec, _ in rows:
                rid = rec["id"]
                out.append(
                    f'\t<{spec.single_key} id="{rid}" xlink:href="{view.base}{spec.list_key}/{rid}"/>\n'
                )
        else:
            shown = None if mode == "full" else display
            for _, v in rows:
                view.xml_entity(v, shown, out)
        out.append(f"</{spec.list_key}>\n{XML_FOOT}")
        return _Answer(200, "".join(out).encode(), XML_TYPE)

    def _generic_rows(
        self,
        view: View,
        filters: list[Callable[[Record], bool]],
        sort_keys: list[tuple[Field, bool, bool]] | None,
        limit: tuple[int, int | None] | None,
    ) -> list[Row]:
        """Every row of the table through the scope and the filters, sorted, then the limit's slice."""
        spec = view.spec
        table = self.shop.tables.get(spec.name, {}) if spec.modelled else {}
        rows: list[Row] = []
        for rid in sorted(table):
            rec = table[rid]
            if not self._in_scope(view, rec):
                continue
            if filters and not all(p(rec) for p in filters):
                continue
            rows.append((rec, view.row_view(rec) if spec.name == "products" else rec))
        return self._sorted_slice(view, rows, sort_keys, limit)

    def _sorted_slice(
        self,
        view: View,
        rows: list[Row],
        sort_keys: list[tuple[Field, bool, bool]] | None,
        limit: tuple[int, int | None] | None,
    ) -> list[Row]:
        sorter = self._sorter(view, sort_keys)
        if sorter is not None:
            sorter(rows)
        if limit is not None:
            offset, count = limit
            rows = rows[offset : offset + count] if count is not None else rows
        return rows

    def _keyset_rows(
        self,
        view: View,
        params: Params,
        filters: list[Callable[[Record], bool]],
        sort_keys: list[tuple[Field, bool, bool]] | None,
        limit: tuple[int, int | None] | None,
    ) -> list[Row] | None:
        """The rows of the listings ps2doli sends, read through a sorted index (``prestashop_keyset.py``):
        exactly what :meth:`_generic_rows` answers, or None when the query has another shape.

        The index only picks the candidate rows and their order (a superset of the matches, already in the
        order the sort gives them); each candidate goes through the scope and every filter as in the generic
        path, and the scan stops once the limit's slice is full."""
        spec = view.spec
        if not spec.modelled or spec.name not in self.shop.tables:
            return None
        table = self.shop.tables[spec.name]
        raw: dict[str, str] = {}
        for n, v in params.filters.items():
            if n in ("sort", "limit"):
                continue
            if not isinstance(v, str):
                return None
            raw[n] = v
        id_field = spec.field("id")
        if id_field is None or not id_field.column:
            return None
        id_conds = parse_filter(raw["id"]) if "id" in raw else []
        if len(id_conds) > 1:
            return None
        # the order the answer must have: the ids' (no sort, [id_ASC]) or (date, id) ([date_ASC,id_ASC])
        order: str | None = None
        if not sort_keys or (len(sort_keys) == 1 and sort_keys[0][0].name == "id" and not sort_keys[0][1]):
            order = "id"
        elif (
            len(sort_keys) == 2
            and sort_keys[0][0].name in ("date_upd", "date_add")
            and not sort_keys[0][1]
            and sort_keys[1][0].name == "id"
            and not sort_keys[1][1]
        ):
            order = sort_keys[0][0].name
        id_col = Column(id_field)
        # 1. an id list (records read again) or a list of values (children of a batch): the rows holding
        # them only, then the generic sort
        if id_conds and id_conds[0][0] in ("in", "eq"):
            wanted = {id_col.operand(o) for o in id_conds[0][1]}
            candidates = sorted(int(w) for w in wanted if w == w.to_integral_value() and int(w) in table)
            rows = self._scan(view, table, candidates, filters, None)
            return None if rows is None else self._sorted_slice(view, rows, sort_keys, limit)
        for name, value in raw.items():
            f = spec.field(name)
            if f is None or not f.column or f.i18n or f.getter or name == "id":
                continue
            conds = parse_filter(value)
            if len(conds) != 1 or conds[0][0] not in ("in", "eq"):
                continue
            col = Column(f)
            by_key = self.indexes.values(spec.name, name, col.key)
            keys = {col.operand(o) for o in conds[0][1]}
            found = sorted(rid for k in keys if k is not None for rid in by_key.get(k, ()))
            rows = self._scan(view, table, found, filters, None)
            return None if rows is None else self._sorted_slice(view, rows, sort_keys, limit)
        if order is None:
            return None
        # 2. a date range: the (date, id) index of the filtered field
        dates = [n for n in ("date_upd", "date_add") if n in raw]
        for name in dates:
            f = spec.field(name)
            conds = parse_filter(raw[name])
            if f is None or f.kind not in ("date", "datetime") or len(conds) != 1:
                continue
            op, operands = conds[0]
            if op not in ("between", "eq", "gt", "lt"):
                continue
            if order not in ("id", name):
                continue
            col = Column(f)
            if (
                order == name
                and f.shop
                and spec.name == "products"
                and not self.indexes.products_aligned(name, view.ctx_shop, col.key)
            ):
                return None  # the shop rows' dates differ from the main rows' (PrestaShop#12385)
            parsed = tuple(col.operand(o) for o in operands)
            if any(p is None for p in parsed):
                return []  # a bound MySQL does not read as a date: nothing matches
            index = self.indexes.dates(spec.name, name, col.key)
            start, end = index.span(op, parsed)
            single = start < end and index.keys[start] == index.keys[end - 1]
            if order == "id" and not single:
                if end - start > len(table) // 4:
                    break  # most of the table: the id order below costs less
                ids: list[int] = sorted(index.ids[start:end])
                rows = self._scan(view, table, ids, filters, limit)
            else:
                # (date, id) order, or one date: the entries are already in the answer's order
                if single and id_conds and id_conds[0][0] == "gt":
                    start = bisect.bisect_right(index.ids, id_col.operand(id_conds[0][1][0]), start, end)
                rows = self._scan(
                    view,
                    table,
                    _checked(index.ids, index.keys, start, end, table, name, col.key),
                    filters,
                    limit,
                )
            if rows is None:
                self.indexes.drop()
            return rows
        if order != "id":
            return None
        # 3. an id range (id walks, sweeps) or no narrowing filter at all: the sorted ids
        ids = self.indexes.ids(spec.name)
        start, end = 0, len(ids)
        if id_conds:
            op, operands = id_conds[0]
            if op not in ("between", "gt", "lt"):
                return None
            parsed_ids = [id_col.operand(o) for o in operands]
            if op == "gt":
                start = bisect.bisect_right(ids, parsed_ids[0])
            elif op == "lt":
                end = bisect.bisect_left(ids, parsed_ids[0])
            else:
                lo, hi = parsed_ids
                start, end = bisect.bisect_left(ids, lo), bisect.bisect_right(ids, hi)
        rows = self._scan(view, table, (ids[i] for i in range(start, end)), filters, limit)
        if rows is None:
            self.indexes.drop()
        return rows

    def _scan(
        self,
        view: View,
        table: Mapping[int, Record],
        rids: Iterable[int | None],
        filters: list[Callable[[Record], bool]],
        limit: tuple[int, int | None] | None,
    ) -> list[Row] | None:
        """Candidates in the answer's order through the scope and the filters, until the limit's slice is full
        (None: an index entry no longer matches its row)."""
        offset, count = limit if limit is not None else (0, None)
        need = None if count is None else offset + count
        if need == 0:
            return []
        products = view.spec.name == "products"
        rows: list[Row] = []
        for rid in rids:
            if rid is None:
                return None
            rec = table.get(rid)
            if rec is None:
                continue
            if not self._in_scope(view, rec):
                continue
            if filters and not all(p(rec) for p in filters):
                continue
            rows.append((rec, view.row_view(rec) if products else rec))
            if need is not None and len(rows) >= need:
                break
        return rows[offset:need] if limit is not None else rows

    def _single(self, view: View, segment: str, params: Params, fmt: Fmt) -> _Answer:
        spec = view.spec
        mode, display = self._display(spec, params)
        rid = php_int(segment)
        rec = self.shop.tables.get(spec.name, {}).get(rid) if spec.modelled else None
        if rec is None:
            return _Answer(404, None, None)
        if spec.shop_scope in ("shop", "fk_shop") and not view.all_shops and not self._in_scope(view, rec):
            cls = _CLASS_NAMES.get(spec.name, spec.single_key.title())
            raise WsError(404, (131, f"This {cls} ({rid}) does not exists on this shop"))
        shown_view = view.row_view(rec)
        listed = "display" in params.flat
        shown = display if mode == "fields" else None
        if fmt == "json":
            if mode == "minimum" and listed:
                return _Answer(200, _json_bytes({spec.list_key: [{"id": rid}]}), JSON_TYPE)
            entity = view.json_entity(shown_view, shown)
            body = {spec.list_key: [entity]} if listed else {spec.single_key: entity}
            return _Answer(200, _json_bytes(body), JSON_TYPE)
        out = [XML_HEAD]
        view.xml_entity(shown_view, shown, out)
        out.append(XML_FOOT)
        return _Answer(200, "".join(out).encode(), XML_TYPE)

    def _schema(self, view: View, schema: str, fmt: Fmt) -> _Answer:
        spec = view.spec
        fields = [f for f in spec.fields if not (schema == "synopsis" and f.name == "id")]
        if fmt == "json":
            entity: dict[str, Any] = {f.name: "" for f in fields}
            if spec.associations:
                entity["associations"] = {
                    a.name: [{"id": None, **{f.name: None for f in a.fields}}] for a in spec.associations
                }
            return _Answer(200, _json_bytes({spec.single_key: entity}), JSON_TYPE)
        out = [XML_HEAD, f"<{spec.single_key}>\n"]
        for f in fields:
            if f.i18n:
                nodes = "".join(
                    f'<language id="{lid}" xlink:href="{view.base}languages/{lid}"></language>'
                    for lid in view.langs
                )
                out.append(f"\t<{f.name}>{nodes}</{f.name}>\n")
            else:
                out.append(f"\t<{f.name}></{f.name}>\n")
        if spec.associations:
            out.append("<associations>\n")
            for a in spec.associations:
                kind = ' virtualEntity="true"' if a.virtual else f' api="{a.api}"'
                out.append(f'<{a.name} nodeType="{a.node}"{kind}>\n\t<{a.node}>\n\t<id></id>\n')
                out.extend(f"\t<{f.name}></{f.name}>\n" for f in a.fields)
                out.append(f"\t</{a.node}>\n</{a.name}>\n")
            out.append("</associations>\n")
        out.append(f"</{spec.single_key}>\n{XML_FOOT}")
        return _Answer(200, "".join(out).encode(), XML_TYPE)

    # --- images --------------------------------------------------------------------------------------------
    def _images(self, segments: list[str], base: str) -> _Answer:
        """WebserviceSpecificManagementImages for product images (XML listings, JPEG bytes)."""
        seg = [*segments[1:], "", "", "", ""]
        kind, obj, image, size = seg[0], seg[1], seg[2], seg[3]
        types = [
            "general",
            "products",
            "categories",
            "manufacturers",
            "suppliers",
            "stores",
            "customizations",
        ]
        if kind == "":
            nodes = "".join(
                f'<{t} xlink:href="{base}images/{t}" get="true" put="false" post="false" delete="false" head="true" '
                'upload_allowed_mimetypes="image/gif, image/jpg, image/jpeg, image/pjpeg, image/png, image/x-png"/>\n'
                for t in types
            )
            return self._xml(f"<image_types>\n{nodes}</image_types>\n")
        if kind not in types:
            raise _did_you_mean(400, f'Image of type "{kind}" does not exist', kind, types, 48)
        if kind != "products":
            if obj == "":
                return self._xml("<image_types>\n</image_types>\n<images>\n</images>\n")
            return _Answer(404, None, None)
        shop = self.shop
        if obj == "":
            listing = "".join(
                f'<image_type id="{tid}" name="{name}" xlink:href="{base}image_types/{tid}"/>\n'
                for tid, name in IMAGE_TYPES
            )
            with_images = sorted({int(img["id_product"]) for img in shop.images.values()})
            images = "".join(
                f'<image id="{pid}" xlink:href="{base}images/products/{pid}"/>\n' for pid in with_images
            )
            return self._xml(f"<image_types>\n{listing}</image_types>\n<images>\n{images}</images>\n")
        if not obj.isdigit() or int(obj) <= 0:
            raise WsError(400, (60, 'The image id is invalid. Please set a valid id or the "default" value'))
        pid = int(obj)
        available = shop.product_image_ids(pid) if pid in shop.tables["products"] else []
        if image == "":
            if not available:
                return _Answer(404, None, None)
            nodes = "".join(
                f'<declination id="{iid}" xlink:href="{base}images/products/{pid}/{iid}"/>\n'
                for iid in available
            )
            return self._xml(f'<image id="{pid}">\n{nodes}</image>\n')
        if image == "bin":
            cover = shop.cover_image(pid) if available else None
            image = str(cover) if cover is not None else ""
        if not image.isdigit() or int(image) not in available:
            raise WsError(400, (57, "This image id does not exist"))
        names = [n for _, n in IMAGE_TYPES]
        if size not in ("", "bin") and size not in names:
            raise _did_you_mean(400, "This image size does not exist", size, names, 58)
        body = shop.image_bytes(int(image), "" if size in ("", "bin") else size)
        return _Answer(200, body, "image/jpeg")

    @staticmethod
    def _xml(content: str) -> _Answer:
        return _Answer(200, (XML_HEAD + content + XML_FOOT).encode(), XML_TYPE)


def create_app(
    shop: ShopData,
    *,
    key: str = DEFAULT_KEY,
    faults: FaultPlan | None = None,
    php8_null_associations: bool = False,
) -> web.Application:
    """The simulator app: ``/api/...`` (and ``/webservice/dispatcher.php?url=...``) over ``shop``.

    ``key`` is the one webservice key accepted (32 characters, GET/HEAD rights on every resource).
    ``php8_null_associations=True`` reproduces the 1.7.8.8-on-PHP-8 JSON artifact where id-only associations
    of combinations, categories and customers render as ``[[null]]`` instead of ``[{"id": N}]``.
    """
    if len(key) != 32:
        raise ValueError("a PrestaShop webservice key has 32 characters")
    app = web.Application()
    app[SHOP_KEY] = shop
    sim = PrestaShopSimulator(shop, key, php8_null_associations=php8_null_associations)
    faults_mod.install(app, faults, answers={"webservice_off": sim.webservice_off})
    app.router.add_route("*", "/api", sim.handle_api)
    app.router.add_route("*", "/api/{tail:.*}", sim.handle_api)
    app.router.add_route("*", "/webservice/dispatcher.php", sim.handle_dispatcher)
    return app


# ----------------------------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------------------------
async def _serve(args: argparse.Namespace) -> None:
    from service.sandbox.runner import start_app
    from service.sandbox.shop_generator import generate_shop

    shop = generate_shop(
        args.seed,
        products=args.products,
        customers=args.customers,
        orders=args.orders,
        languages=args.languages,
        shops=args.shops,
        round_type=args.round_type,
    )
    app = create_app(shop, key=args.key, php8_null_associations=args.php8_null_associations)
    server = await start_app(app, host=args.host, port=args.port)
    print(f"PrestaShop simulator on {server.url}/api  key={args.key}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="PrestaShop 1.7.8.8 webservice simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--orders", type=int, default=50)
    parser.add_argument("--languages", type=int, default=1)
    parser.add_argument("--shops", type=int, default=1)
    parser.add_argument("--round-type", type=int, default=2, choices=(1, 2, 3))
    parser.add_argument("--key", default=DEFAULT_KEY)
    parser.add_argument(
        "--php8-null-associations",
        action="store_true",
        help='render id-only associations as [[null]] like 1.7.8.8 on PHP 8 (default: [{"id": N}])',
    )
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()

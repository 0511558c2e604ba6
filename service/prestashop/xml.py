"""PrestaShop XML -> the same Python shapes the JSON output gives.

XML is the webservice's default output and the only one every version (1.5 to 9) has. This module turns it
into what ``output_format=JSON`` would have returned, so the rest of ps2doli reads one shape:

- ``<prestashop><products><product id="1" xlink:href="…"/>…</products></prestashop>`` -> ``{"products":
  [{"id": "1"}, …]}`` (the id-only listing); full objects become dicts of their fields.
- An empty list ``<products>\\n</products>`` -> ``[]`` (JSON renders an empty result as the bare array
  ``[]``).
- A single object ``<prestashop><product>…</product></prestashop>`` -> ``{"product": {…}}``.
- ``<name><language id="1" …>text</language>…</name>`` -> ``[{"id": "1", "value": "text"}, …]`` (the JSON
  shape with two or more languages; JSON collapses one language to a plain string, :func:`values.lang_text`
  reads both).
- ``<associations><categories …><category xlink:href="…"><id>2</id></category>…`` -> ``{"associations":
  {"categories": [{"id": "2"}, …]}}``. Associations without rows (``<combinations …/>``) are left out, as JSON
  leaves them out.
- The 1.7.8 / PHP 8 bug: associations that declare no fields render their rows as ``<0><![CDATA[]]></0>``
  inside the row element, with the row id only in the row's ``xlink:href``. ``<0>`` is not even well-formed
  XML, so numeric tag names are renamed before parsing (outside CDATA sections only) and the id is recovered
  from the last numeric segment of ``xlink:href``. That is the one place the XML output is *better* than JSON
  (which gives ``[[null]]``).
- Values stay text (numbers are not converted; empty elements are ``""``, XML cannot tell null from empty):
  :mod:`service.prestashop.values` copes with both the JSON and the XML types.

Safety: the document is parsed with :mod:`xml.etree.ElementTree` (expat). PrestaShop never sends a DTD, so any
``<!DOCTYPE`` or ``<!ENTITY`` outside CDATA is refused before parsing: with no DTD there are no entity
declarations to expand (no billion-laughs, no external entities), which is why defusedxml is not needed.
Every failure is a :class:`~service.errors.BadResponse` quoting the first bytes.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any, Literal

from service.errors import BadResponse, Where, first_bytes

XLINK_HREF = "xlink:href"
_XLINK_NS_HREF = "{http://www.w3.org/1999/xlink}href"
_CDATA = re.compile(rb"<!\[CDATA\[.*?\]\]>", re.DOTALL)
_NUMERIC_TAG = re.compile(rb"<(/?)(\d[\w.\-]*)")
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)")
_BUG_PREFIX = "_ps_numeric_"
_LAST_ID = re.compile(r"/([0-9]{1,18})/?$")
_DIGITS = re.compile(r"[0-9]{1,18}")
_MAX_DEPTH = 32

Expect = Literal["list", "single"] | None


def _sanitize(body: bytes) -> bytes:
    """Rename numeric tag names (``<0>`` -> ``<_ps_numeric_0>``) outside CDATA; refuse DTDs."""
    out: list[bytes] = []
    pos = 0
    for match in _CDATA.finditer(body):
        out.append(_fix_markup(body[pos : match.start()]))
        out.append(match.group(0))
        pos = match.end()
    out.append(_fix_markup(body[pos:]))
    return b"".join(out)


def _fix_markup(chunk: bytes) -> bytes:
    if _DTD.search(chunk):
        raise ValueError("a DOCTYPE/ENTITY declaration (PrestaShop never sends one; refused)")
    return _NUMERIC_TAG.sub(lambda m: b"<" + m.group(1) + _BUG_PREFIX.encode() + m.group(2), chunk)


def parse_document(body: bytes, *, where: Where | None = None) -> ET.Element:
    """Parse a PrestaShop XML body into its ``<prestashop>`` root element, or raise :class:`BadResponse`."""
    where = where or Where()
    try:
        root = ET.fromstring(_sanitize(body))
    except (ET.ParseError, ValueError, LookupError, UnicodeError, RecursionError) as exc:
        raise BadResponse(
            f"the shop sent XML that cannot be parsed ({_reason(exc)}); first bytes: {first_bytes(body)!r}",
            where=where,
            body=first_bytes(body),
        ) from None
    if root.tag != "prestashop":
        raise BadResponse(
            f"the shop sent XML whose root is <{root.tag[:40]}>, not <prestashop>; first bytes: "
            f"{first_bytes(body)!r}",
            where=where,
            body=first_bytes(body),
        )
    return root


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:120]


def parse(body: bytes, *, where: Where | None = None, expect: Expect = None) -> Any:
    """A PrestaShop XML body -> the value ``output_format=JSON`` would have given (see the module docstring).

    ``expect`` says what was asked for when the caller knows it ("list" for ``/api/products``, "single" for
    ``/api/products/6``); without it the shape is guessed from the document.
    """
    return to_data(parse_document(body, where=where), where=where, expect=expect)


def to_data(root: ET.Element, *, where: Where | None = None, expect: Expect = None) -> Any:
    where = where or Where()
    children = list(root)
    if not children:
        raise BadResponse("the shop sent an empty <prestashop> document", where=where)
    try:
        if len(children) == 1 and children[0].tag == "errors":
            return {"errors": errors_of(children[0])}
        result: dict[str, Any] = {}
        for top in children:
            if _is_list(top, expect):
                items = [_entity(child, 1) for child in top if not _is_bug(child)]
                if not items and len(children) == 1:
                    return []
                result[top.tag] = items
            else:
                result[top.tag] = _entity(top, 1)
        return result
    except RecursionError:
        raise BadResponse("the shop sent XML nested too deeply", where=where) from None
    except _TooDeep:
        raise BadResponse("the shop sent XML nested too deeply", where=where) from None


class _TooDeep(Exception):
    pass


def errors_of(errors: ET.Element) -> list[dict[str, Any]]:
    """``<errors><error><code>20</code><message>m</message></error>`` -> ``[{"code": 20, "message": "m"}]``"""
    out: list[dict[str, Any]] = []
    for error in errors:
        code_text = (error.findtext("code") or "").strip()
        code: int | str | None = int(code_text) if _DIGITS.fullmatch(code_text) else (code_text or None)
        out.append({"code": code, "message": error.findtext("message") or ""})
    return out


def _is_bug(element: ET.Element) -> bool:
    return element.tag.startswith(_BUG_PREFIX)


def _href(element: ET.Element) -> str:
    return element.get(XLINK_HREF) or element.get(_XLINK_NS_HREF) or ""


def _is_list(element: ET.Element, expect: Expect) -> bool:
    if expect == "list":
        return True
    if expect == "single":
        return False
    children = [c for c in element if not _is_bug(c)]
    if element.find("id") is not None:
        return False
    if (element.text or "").strip():
        return False
    if not children:
        # ``<products>\n</products>``: an empty list (a single object always has children)
        return True
    tags = {c.tag for c in children}
    return len(tags) == 1 and all(c.get("id") is not None or len(c) > 0 or _href(c) for c in children)


def _entity(element: ET.Element, depth: int) -> dict[str, Any]:
    """One object: ``<product id="1" xlink:href/>`` (minimal) or ``<product><id>…</id>…</product>`` (full)."""
    if depth > _MAX_DEPTH:
        raise _TooDeep
    record: dict[str, Any] = {}
    if element.get("id") is not None and element.find("id") is None:
        record["id"] = element.get("id", "")
    for child in element:
        if _is_bug(child):
            continue
        if child.tag == "associations":
            associations = _associations(child, depth + 1)
            if associations:
                record["associations"] = associations
            continue
        record[child.tag] = _value(child, depth + 1)
    return record


def _value(element: ET.Element, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise _TooDeep
    children = [c for c in element if not _is_bug(c)]
    if not children:
        return element.text or ""
    if all(c.tag == "language" for c in children):
        return [{"id": c.get("id", ""), "value": c.text or ""} for c in children]
    tags = {c.tag for c in children}
    if len(tags) == 1 and len(children) > 1:
        return [_value(c, depth + 1) if len(c) == 0 else _entity(c, depth + 1) for c in children]
    return {c.tag: _value(c, depth + 1) for c in children}


def _associations(element: ET.Element, depth: int) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for association in element:
        if _is_bug(association):
            continue
        rows = [_association_row(row, depth + 1) for row in association if not _is_bug(row)]
        if rows:
            out[association.tag] = rows
    return out


def _association_row(row: ET.Element, depth: int) -> dict[str, Any]:
    """A row of an association; without an ``<id>`` (the ``<0>`` bug) the id comes from xlink:href."""
    record = _entity(row, depth)
    if record.get("id") in (None, ""):
        match = _LAST_ID.search(_href(row))
        if match:
            record["id"] = match.group(1)
        else:
            record.pop("id", None)
    return record


def permissions(root: ET.Element) -> dict[str, set[str]]:
    """``GET /api/`` (XML) -> ``{"products": {"GET", "HEAD"}, …}``.

    The XML resource list carries one attribute per method (``get="true" put="false" post="false"
    delete="false" head="true"``, WebserviceOutputBuilder::getResourcesList). The JSON output drops them and
    lists names only.
    """
    api = root.find("api")
    if api is None:
        return {}
    out: dict[str, set[str]] = {}
    for resource in api:
        if _is_bug(resource):
            continue
        methods = {
            method.upper()
            for method in ("get", "put", "post", "delete", "head")
            if (resource.get(method) or "").lower() == "true"
        }
        out[resource.tag] = methods
    return out


def image_ids(root: ET.Element) -> list[int]:
    """``GET /api/images/products/6`` -> the image ids of product 6.

    WebserviceSpecificManagementImages::manageEntityDeclinatedImages renders ``<image id="6"><declination
    id="12" xlink:href="…/images/products/6/12"/>…</image>`` (XML only: the JSON renderer has no shape for
    it).
    """
    image = root.find("image")
    if image is None:
        return []
    ids: list[int] = []
    for declination in image:
        text = (declination.get("id") or "").strip()
        if not _DIGITS.fullmatch(text):
            match = _LAST_ID.search(_href(declination))
            if not match:
                continue
            text = match.group(1)
        ids.append(int(text))
    return ids

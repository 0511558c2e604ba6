"""The zeep layer of the SOAP backend: envelopes built and answers read, never sent.

:mod:`service.dolibarr.soap` (``DolibarrSoapClient``) decides what each port method sends and what the answers
mean; this module holds what sits between it and zeep (see ``docs/dolibarr-soap.md``):

- :class:`OfflineTransport`, a zeep transport that serves the WSDL bytes fetched over aiohttp (and
  :data:`SOAP_ENCODING_SCHEMA`) from memory and refuses any network I/O;
- :class:`Server`, one ``server_<name>.php`` with its WSDL loaded into zeep (operations, declared fields);
- :func:`fill`, the parts of a request as zeep takes them (what is not given is skipped, not sent empty);
- reading answers: :func:`parse_envelope` parses strictly and cuts PHP warnings printed around the envelope,
  :func:`strip_untyped` keeps nusoap's untyped array items that zeep would drop, :func:`element_value` and
  :func:`plain` turn what zeep read into plain Python.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

import structlog
import zeep
import zeep.exceptions
import zeep.helpers
import zeep.transports
from lxml import etree

from service.errors import ConfigError, first_bytes

__all__ = [
    "NS",
    "PARSER",
    "REST_HINT",
    "SOAP_ENC",
    "SOAP_ENCODING_SCHEMA",
    "SOAP_ENV",
    "XSI",
    "OfflineTransport",
    "Server",
    "ZeepClient",
    "ZeepSettings",
    "element_value",
    "fill",
    "local_name",
    "parse_envelope",
    "plain",
    "serialize_object",
    "strip_untyped",
]

# the client's logger: the events of reading an answer are the client's
log = structlog.get_logger("ps2doli.dolibarr.soap")

NS: Final = "http://www.dolibarr.org/ns/"
SOAP_ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_ENC: Final = "http://schemas.xmlsoap.org/soap/encoding/"
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
_XSI_TYPE: Final = f"{{{XSI}}}type"
_XSI_NIL: Final = f"{{{XSI}}}nil"
_ARRAY_TYPE: Final = f"{{{SOAP_ENC}}}arrayType"

# zeep resolves ``SOAP-ENC:Array`` (nusoap's arrays) through the SOAP 1.1 encoding namespace, which it would
# download from schemas.xmlsoap.org. This is the part of that schema zeep needs, written for this client: the
# ``Array`` type with its ``arrayType``/``offset`` and common attributes, items of any element.
SOAP_ENCODING_SCHEMA: Final = b"""<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:tns="http://schemas.xmlsoap.org/soap/encoding/"
           targetNamespace="http://schemas.xmlsoap.org/soap/encoding/">
  <xs:attribute name="arrayType" type="xs:string"/>
  <xs:attribute name="offset" type="xs:string"/>
  <xs:attributeGroup name="commonAttributes">
    <xs:attribute name="id" type="xs:ID"/>
    <xs:attribute name="href" type="xs:anyURI"/>
    <xs:anyAttribute namespace="##other" processContents="lax"/>
  </xs:attributeGroup>
  <xs:attributeGroup name="arrayAttributes">
    <xs:attribute ref="tns:arrayType"/>
    <xs:attribute ref="tns:offset"/>
  </xs:attributeGroup>
  <xs:group name="Array">
    <xs:sequence>
      <xs:any namespace="##any" minOccurs="0" maxOccurs="unbounded" processContents="lax"/>
    </xs:sequence>
  </xs:group>
  <xs:complexType name="Array">
    <xs:group ref="tns:Array" minOccurs="0"/>
    <xs:attributeGroup ref="tns:arrayAttributes"/>
    <xs:attributeGroup ref="tns:commonAttributes"/>
  </xs:complexType>
</xs:schema>
"""

# zeep's untyped entry points, typed Any once here (zeep ships without annotations).
ZeepClient: Any = zeep.Client
ZeepSettings: Any = zeep.Settings
_SkipValue: Any = zeep.xsd.SkipValue
serialize_object: Any = zeep.helpers.serialize_object

# A strict parser for answers: no entities, no network, no DTD, no recovery of broken XML.
PARSER: Final = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, recover=False)

# what an operation this Dolibarr lacks points to (the client's other refusals say it too)
REST_HINT: Final = 'use the REST backend (dolibarr.backend = "rest", Dolibarr 4.0 or later) for this'


class OfflineTransport(zeep.transports.Transport):
    """A zeep transport that serves documents from memory and never touches the network.

    zeep asks its transport for the WSDL and for the schemas it imports; this one knows the WSDL bytes fetched
    over aiohttp and the SOAP encoding schema above, and refuses everything else.
    """

    def __init__(self, documents: Mapping[str, bytes]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.documents = dict(documents)
        self.documents.setdefault(SOAP_ENC, SOAP_ENCODING_SCHEMA)

    def load(self, url: str) -> bytes:
        try:
            return self.documents[url]
        except KeyError:
            raise ConfigError(
                f"the Dolibarr WSDL refers to {url}, which ps2doli does not fetch "
                "(no network I/O inside zeep)"
            ) from None

    def get(self, address: str, params: Any, headers: Any) -> Any:
        raise RuntimeError("OfflineTransport does no network I/O: ps2doli sends envelopes with aiohttp")

    def post(self, address: str, message: Any, headers: Any) -> Any:
        raise RuntimeError("OfflineTransport does no network I/O: ps2doli sends envelopes with aiohttp")

    def post_xml(self, address: str, envelope: Any, headers: Any) -> Any:
        raise RuntimeError("OfflineTransport does no network I/O: ps2doli sends envelopes with aiohttp")


def strip_untyped(doc: Any) -> None:
    """Drop nusoap's ``xsi:type="xsd:"`` (a type with no name) so zeep keeps the element, not drops it."""
    for element in doc.iter():
        value = element.get(_XSI_TYPE)
        if value is not None and (value.endswith(":") or not value.strip()):
            del element.attrib[_XSI_TYPE]


def local_name(tag: Any) -> str:
    text = str(tag)
    return text.rsplit("}", 1)[-1]


def element_value(element: Any) -> Any:
    """An XML element zeep left unparsed (an untyped nusoap item) as plain Python: nil -> None, an element
    with children -> dict (or list for a SOAP array), text -> str (empty -> None, as zeep reads empty
    strings)."""
    if element.get(_XSI_NIL) in ("true", "1"):
        return None
    children = [child for child in element if isinstance(child.tag, str)]
    if children:
        if element.get(_ARRAY_TYPE) is not None or all(local_name(c.tag) == "item" for c in children):
            return [element_value(child) for child in children]
        return {local_name(child.tag): element_value(child) for child in children}
    if element.get(_ARRAY_TYPE) is not None:
        return []
    text = element.text
    return text if text else None


def plain(value: Any) -> Any:
    """zeep's answer (after ``serialize_object``) as JSON-friendly Python: SOAP arrays become lists, unparsed
    elements go through :func:`element_value`, dates become ISO strings."""
    if isinstance(value, Mapping):
        if "_value_1" in value and "arrayType" in value:
            items = value.get("_value_1") or []
            if not isinstance(items, list):
                items = [items]
            return [plain(item) for item in items if not (isinstance(item, str) and not item.strip())]
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value if not (isinstance(v, str) and not v.strip())]
    if isinstance(value, etree._Element):
        return element_value(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def fill(xsd_type: Any, value: Any) -> Any:
    """A value zeep accepts for ``xsd_type``: every element the caller did not give (or gave as None) is
    skipped, not sent empty, so Dolibarr sees it as absent (``isset()`` false) rather than ``''``."""
    if value is None:
        return _SkipValue
    elements = getattr(xsd_type, "elements", None)
    if isinstance(value, Mapping) and elements is not None:
        filled: dict[str, Any] = {}
        for name, element in elements:
            item = value.get(name)
            if item is None:
                filled[name] = _SkipValue
            elif isinstance(item, list):
                filled[name] = [fill(element.type, entry) for entry in item]
            else:
                filled[name] = fill(element.type, item)
        return filled
    return value


def fill_call(xsd_type: Any, parts: Mapping[str, Any]) -> Any:
    """An operation's parts for zeep, where each part before the last one given is sent, empty when not given.

    Dolibarr's NuSOAP calls the PHP function with the request's parts by position (``call_user_func_array``
    over ``array_values``), whatever their names: ``getInvoice`` with ``ref_ext`` alone ran as ``getInvoice($auth,
    $id = 'ps-main-invoice-38')`` and found nothing (real 20.0.2). An empty part is PHP's ``''``: falsy, as
    the functions' defaults (``$id = 0``, ``$ref = ''``) are."""
    filled = fill(xsd_type, parts)
    elements = [name for name, _ in getattr(xsd_type, "elements", [])]
    given = [i for i, name in enumerate(elements) if parts.get(name) is not None]
    for name in elements[: max(given, default=-1)]:
        if filled.get(name) is _SkipValue:
            filled[name] = ""
    return filled


@dataclass
class Server:
    """One Dolibarr SOAP server, its WSDL loaded into zeep."""

    name: str
    endpoint: str  # where envelopes are POSTed (dolibarr.url based, not the WSDL's own address)
    client: Any
    binding: Any
    types: dict[str, list[str]] = field(default_factory=dict)

    def operation(self, name: str) -> Any:
        try:
            return self.binding.get(name)
        except (ValueError, KeyError, LookupError):
            raise ConfigError(
                f"this Dolibarr's SOAP server_{self.name}.php has no operation {name}: it is too old; "
                f"{REST_HINT}"
            ) from None

    def type_fields(self, type_name: str) -> list[str]:
        if type_name not in self.types:
            try:
                xsd_type = self.client.get_type(f"{{{NS}}}{type_name}")
            except (LookupError, ValueError, zeep.exceptions.Error):
                self.types[type_name] = []
            else:
                self.types[type_name] = [name for name, _ in getattr(xsd_type, "elements", [])]
        return self.types[type_name]


# ------------------------------------------------------------------------------------------------ answers


_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*encoding=", re.IGNORECASE)
_CHARSET = re.compile(r"charset=\"?([\w.:-]+)", re.IGNORECASE)


_ENVELOPE_START = re.compile(rb"<\?xml\b|<[\w.-]+:Envelope\b")
_ENVELOPE_END = re.compile(rb"</[\w.-]+:Envelope\s*>")


def parse_envelope(body: bytes, headers: Mapping[str, str]) -> Any:
    """The answer as an XML tree, or None when it is not complete XML.

    PHP notices and warnings printed before or after the envelope (nusoap on PHP 8 with ``display_errors`` on:
    "Warning: foreach() argument must be of type array") are cut off, with a warning in the log; a body that
    is still not well-formed XML after that (cut short, an HTML page) is refused.
    """
    data = _as_xml_bytes(body, headers)
    try:
        return etree.fromstring(data, parser=PARSER)
    except etree.XMLSyntaxError:
        pass
    start = _ENVELOPE_START.search(data)
    ends = list(_ENVELOPE_END.finditer(data))
    if start is None or not ends or ends[-1].end() <= start.start():
        return None
    try:
        doc = etree.fromstring(data[start.start() : ends[-1].end()], parser=PARSER)
    except etree.XMLSyntaxError:
        return None
    noise = data[: start.start()] + b" ... " + data[ends[-1].end() :]
    log.warning("dolibarr.soap.noise_around_envelope", noise=first_bytes(noise, 200))
    return doc


def _as_xml_bytes(body: bytes, headers: Mapping[str, str]) -> bytes:
    """The answer as bytes lxml reads right: an envelope without an XML declaration is in the charset of its
    Content-Type (old nusoap servers answer ISO-8859-1)."""
    if _DECLARATION.match(body):
        return body
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    found = _CHARSET.search(content_type)
    charset = found.group(1).lower() if found else "utf-8"
    if charset in ("utf-8", "utf8"):
        return body
    try:
        return body.decode(charset).encode("utf-8")
    except (LookupError, UnicodeDecodeError):
        return body

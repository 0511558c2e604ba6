"""A Dolibarr 20.0.2 SOAP webservice (nusoap, rpc/encoded) for tests and the demo.

Serves ``GET /webservices/server_<name>.php?wsdl`` (the six WSDLs, byte for byte what Dolibarr 20.0.2 serves:
:func:`render_wsdl` rebuilds them from :data:`WSDL` and a test compares them with the captures) and answers the
envelopes POSTed to ``/webservices/server_<name>.php`` the way nusoap does: HTTP 200 with a ``result``
structure for every outcome (``OK``, ``NOT_FOUND``, ``BAD_VALUE_FOR_SECURITY_KEY``, ``KO``...), a SOAP Fault
with HTTP 500 only when the envelope itself is refused.

Answers are shaped like the captured ones in ``shared/reference/dolibarr/soap``: typed parts in the WSDL's
order; structs whose PHP array has other keys than the WSDL type leave out null fields (thirdparty, product,
category) while the others send them as ``xsi:nil`` (order, invoice, result); order lines and list rows are
*untyped* items (``xsi:type="xsd:"``), invoice lines are ``tns:line`` items. The rules each operation follows
are the ones of Dolibarr's ``htdocs/webservices/server_*.php`` (see ``docs/dolibarr-soap.md``).

The data is a small in-memory store of its own (:class:`SoapStore`, ``app[STORE_KEY]``), modelled on what
Dolibarr stores (NULL vs empty strings, numbering, statuses). Fault injection and the request log come from
:mod:`service.sandbox.faults`; ``app[OPERATIONS_KEY]`` counts operations by name.

Run it alone: ``python -m service.sandbox.dolibarr_soap_sim --port 8081``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Final
from xml.sax.saxutils import escape

from aiohttp import web
from lxml import etree

from service.sandbox.faults import FaultPlan, install
from service.sandbox.runner import start_app

__all__ = [
    "OPERATIONS_KEY",
    "STORE_KEY",
    "WSDL",
    "SoapStore",
    "Struct",
    "Typed",
    "Untyped",
    "create_app",
    "main",
    "render_envelope",
    "render_fault",
    "render_wsdl",
    "wsdl_specs",
]

NS: Final = "http://www.dolibarr.org/ns/"
SOAP_ENV: Final = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_ENC: Final = "http://schemas.xmlsoap.org/soap/encoding/"
XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
DEFAULT_KEY: Final = "localdolibarrsoapkey0123456789abcdef"
DEFAULT_LOGIN: Final = "admin"
DEFAULT_PASSWORD: Final = "Admin-Pass-2024"

# --------------------------------------------------------------------------------------------- WSDL spec


@dataclass(frozen=True)
class TypeSpec:
    """One ``xsd:complexType`` of a WSDL: a struct (``xsd:all``), a sequence array or a SOAP-ENC array."""

    kind: str  # struct | seq | soaparray
    name: str
    fields: tuple[tuple[str, str], ...] = ()  # struct: (element, type); seq: the one repeated element
    item: str = ""  # soaparray: wsdl:arrayType


@dataclass(frozen=True)
class OpSpec:
    name: str
    doc: str
    inputs: tuple[tuple[str, str], ...]
    outputs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ServerSpec:
    service: str
    types: tuple[TypeSpec, ...]
    operations: tuple[OpSpec, ...]

    def type(self, name: str) -> TypeSpec | None:
        local = name.split(":", 1)[1] if name.startswith("tns:") else name
        return next((t for t in self.types if t.name == local), None)

    def operation(self, name: str) -> OpSpec | None:
        return next((o for o in self.operations if o.name == name), None)


def _fields(spec: str) -> tuple[tuple[str, str], ...]:
    """``"id thirdparty_id:int lines:tns:LinesArray2"`` -> ((id, xsd:string), (thirdparty_id, xsd:int), ...)."""
    out = []
    for word in spec.split():
        name, _, kind = word.partition(":")
        if not kind:
            kind = "xsd:string"
        elif not kind.startswith("tns:"):
            kind = f"xsd:{kind}"
        out.append((name, kind))
    return tuple(out)


def _struct(name: str, spec: str) -> TypeSpec:
    return TypeSpec("struct", name, _fields(spec))


def _seq(name: str, element: str, item: str) -> TypeSpec:
    return TypeSpec("seq", name, ((element, item),))


def _op(name: str, doc: str, inputs: str, outputs: str) -> OpSpec:
    return OpSpec(
        name,
        doc,
        _fields("authentication:tns:authentication " + inputs),
        _fields("result:tns:result " + outputs),
    )


_AUTH = _struct("authentication", "dolibarrkey sourceapplication login password entity")
_RESULT = _struct("result", "result_code result_label")
_IMAGE = _struct("image", "photo photo_vignette imgWidth imgHeight")
_THIRDPARTY = _struct(
    "thirdparty",
    "id ref ref_ext fk_user_author status client supplier customer_code supplier_code customer_code_accountancy "
    "supplier_code_accountancy date_creation:dateTime date_modification:dateTime note_private note_public address "
    "zip town region_code country_id country_code country phone fax email url profid1 profid2 profid3 profid4 "
    "profid5 profid6 capital vat_used vat_number",
)
_ORDER_LINE = _struct(
    "line",
    "id type:int fk_commande:int fk_parent_line:int desc qty:double price:double unitprice:double vat_rate:double "
    "remise:double remise_percent:double total_net:double total_vat:double total:double date_start:date "
    "date_end:date product_id:int product_ref product_label product_desc",
)
_INVOICE_LINE = _struct(
    "line",
    "id type:int desc vat_rate:double qty:double unitprice:double total_net:double total_vat:double total:double "
    "date_start:date date_end:date product_id:int product_ref product_label product_desc",
)
_ORDER = _struct(
    "order",
    "id ref ref_client ref_ext thirdparty_id:int status:int billed total_net:double total_vat:double "
    "total_localtax1:double total_localtax2:double total:double date:date date_creation:dateTime "
    "date_validation:dateTime date_modification:dateTime source note_private note_public project_id "
    "mode_reglement_id mode_reglement_code mode_reglement cond_reglement_id cond_reglement_code cond_reglement "
    "cond_reglement_doc date_livraison:date demand_reason_id lines:tns:LinesArray2",
)
_INVOICE = _struct(
    "invoice",
    "id ref ref_ext thirdparty_id:int fk_user_author fk_user_valid date:date date_due:date date_creation:dateTime "
    "date_validation:dateTime date_modification:dateTime payment_mode_id type:int total_net:double "
    "total_vat:double total:double note_private note_public status:int close_code close_note project_id "
    "lines:tns:LinesArray2",
)
_PRODUCT = (
    "id ref ref_ext type label description date_creation:dateTime date_modification:dateTime note status_tobuy "
    "status_tosell barcode barcode_type country_id country_code customcode price_net price price_min_net "
    "price_min price_base_type vat_rate vat_npr localtax1_tx localtax2_tx stock_alert stock_real stock_pmp "
    "warehouse_ref canvas import_key dir images:tns:ImagesArray"
)
_CATEGORIE = _struct(
    "categorie",
    "id id_mere label description socid type visible dir photos:tns:PhotosArray filles:tns:FillesArray",
)
_BY_ID = "id ref ref_ext"


def wsdl_specs(product_extrafields: tuple[str, ...] = ("longdescription",)) -> dict[str, ServerSpec]:
    """The six servers of Dolibarr 20.0.2, in the order of their WSDLs. The product type ends with one
    ``options_<name>`` element per product extrafield (the captured site has ``longdescription``)."""
    product = _struct("product", _PRODUCT + "".join(f" options_{name}" for name in product_extrafields))
    return {
        "thirdparty": ServerSpec(
            "WebServicesDolibarrThirdParty",
            (
                _AUTH,
                _RESULT,
                _THIRDPARTY,
                _struct("filterthirdparty", "client supplier category"),
                TypeSpec("soaparray", "ThirdPartiesArray", item="tns:thirdparty[]"),
                _seq("ThirdPartiesArray2", "thirdparty", "tns:thirdparty"),
            ),
            (
                _op(
                    "getThirdParty",
                    "WS to get a thirdparty from its id, ref or ref_ext",
                    "id ref ref_ext barcode profid1 profid2",
                    "thirdparty:tns:thirdparty",
                ),
                _op("createThirdParty", "WS to create a thirdparty", "thirdparty:tns:thirdparty", "id ref"),
                _op("updateThirdParty", "WS to update a thirdparty", "thirdparty:tns:thirdparty", "id"),
                _op(
                    "getListOfThirdParties",
                    "WS to get list of thirdparties id and ref",
                    "filterthirdparty:tns:filterthirdparty",
                    "thirdparties:tns:ThirdPartiesArray2",
                ),
                _op(
                    "deleteThirdParty", "WS to delete a thirdparty from its id, ref or ref_ext", _BY_ID, "id"
                ),
            ),
        ),
        "productorservice": ServerSpec(
            "WebServicesDolibarrProductOrService",
            (
                _AUTH,
                _RESULT,
                product,
                _seq("ImagesArray", "image", "tns:image"),
                _IMAGE,
                _struct("filterproduct", "type status_tobuy status_tosell"),
                _seq("ProductsArray2", "product", "tns:product"),
            ),
            (
                _op(
                    "getProductOrService",
                    "WS to get product or service",
                    "id ref ref_ext lang",
                    "product:tns:product",
                ),
                _op(
                    "createProductOrService", "WS to create a product or service", "product:tns:product", "id"
                ),
                _op(
                    "updateProductOrService", "WS to update a product or service", "product:tns:product", "id"
                ),
                _op(
                    "deleteProductOrService", "WS to delete a product or service", "listofid", "nbdeleted:int"
                ),
                _op(
                    "getListOfProductsOrServices",
                    "WS to get list of all products or services id and ref",
                    "filterproduct:tns:filterproduct",
                    "products:tns:ProductsArray2",
                ),
                _op(
                    "getProductsForCategory",
                    "WS to get list of all products or services for a category",
                    "id lang",
                    "products:tns:ProductsArray2",
                ),
            ),
        ),
        "order": ServerSpec(
            "WebServicesDolibarrOrder",
            (
                _AUTH,
                _RESULT,
                _ORDER_LINE,
                _seq("LinesArray2", "line", "tns:line"),
                _ORDER,
                _seq("OrdersArray2", "order", "tns:order"),
            ),
            (
                _op("getOrder", "WS to get a particular invoice", _BY_ID, "order:tns:order"),
                _op(
                    "getOrdersForThirdParty",
                    "WS to get all orders of a third party",
                    "idthirdparty",
                    "orders:tns:OrdersArray2",
                ),
                _op("createOrder", "WS to create an order", "order:tns:order", "id ref"),
                _op("updateOrder", "WS to update an order", "order:tns:order", "id ref ref_ext"),
                _op("validOrder", "WS to valid an order", "id id_warehouse", ""),
            ),
        ),
        "invoice": ServerSpec(
            "WebServicesDolibarrInvoice",
            (
                _AUTH,
                _RESULT,
                _INVOICE_LINE,
                _seq("LinesArray2", "line", "tns:line"),
                _INVOICE,
                _seq("InvoicesArray2", "invoice", "tns:invoice"),
            ),
            (
                _op("getInvoice", "WS to get a particular invoice", _BY_ID, "invoice:tns:invoice"),
                _op(
                    "getInvoicesForThirdParty",
                    "WS to get all invoices of a third party",
                    "idthirdparty",
                    "invoices:tns:InvoicesArray2",
                ),
                _op("createInvoice", "WS to create an invoice", "invoice:tns:invoice", "id ref ref_ext"),
                _op(
                    "createInvoiceFromOrder",
                    "WS to create an invoice from an order",
                    "id_order ref_order ref_ext_order",
                    "id ref ref_ext",
                ),
                _op("updateInvoice", "WS to update an invoice", "invoice:tns:invoice", "id ref ref_ext"),
            ),
        ),
        "category": ServerSpec(
            "WebServicesDolibarrCategorie",
            (
                _AUTH,
                _CATEGORIE,
                TypeSpec("soaparray", "FillesArray", item="tns:categorie[]"),
                _seq("PhotosArray", "image", "tns:image"),
                _IMAGE,
                _RESULT,
            ),
            (_op("getCategory", "WS to get category", "id", "categorie:tns:categorie"),),
        ),
        "other": ServerSpec(
            "WebServicesDolibarrOther",
            (_AUTH, _RESULT, _struct("document", "filename mimetype content length")),
            (
                _op("getVersions", "WS to get Versions", "", "dolibarr os php webserver"),
                _op("getDocument", "WS to get document", "modulepart file", "document:tns:document"),
            ),
        ),
    }


WSDL: Final = wsdl_specs()

_DEFINITIONS_NS = (
    'xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" '
    'xmlns:tns="http://www.dolibarr.org/ns/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" '
    'xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns="http://schemas.xmlsoap.org/wsdl/" '
    'targetNamespace="http://www.dolibarr.org/ns/"'
)
_BODY = (
    '<soap:body use="encoded" namespace="http://www.dolibarr.org/ns/" '
    'encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"/>'
)


def render_wsdl(server: str, location: str, specs: Mapping[str, ServerSpec] | None = None) -> bytes:
    """The WSDL nusoap prints for ``server_<server>.php`` (``location`` = its soap:address)."""
    spec = (specs or WSDL)[server]
    out = ['<?xml version="1.0" encoding="ISO-8859-1"?>', f"<definitions {_DEFINITIONS_NS}>", "<types>"]
    out += ['<xsd:schema targetNamespace="http://www.dolibarr.org/ns/"', ">"]
    out += [
        ' <xsd:import namespace="http://schemas.xmlsoap.org/soap/encoding/" />',
        ' <xsd:import namespace="http://schemas.xmlsoap.org/wsdl/" />',
    ]
    for t in spec.types:
        out.append(f' <xsd:complexType name="{t.name}">')
        if t.kind == "struct":
            out.append("  <xsd:all>")
            out += [f'   <xsd:element name="{n}" type="{k}"/>' for n, k in t.fields]
            out.append("  </xsd:all>")
        elif t.kind == "seq":
            (element, item) = t.fields[0]
            out += [
                "  <xsd:sequence>",
                f'   <xsd:element name="{element}" type="{item}" minOccurs="0" maxOccurs="unbounded"/>',
                "  </xsd:sequence>",
            ]
        else:
            out += [
                "  <xsd:complexContent>",
                '   <xsd:restriction base="SOAP-ENC:Array">',
                f'    <xsd:attribute ref="SOAP-ENC:arrayType" wsdl:arrayType="{t.item}"/>',
                "   </xsd:restriction>",
                "  </xsd:complexContent>",
            ]
        out.append(" </xsd:complexType>")
    out += ["</xsd:schema>", "</types>"]
    for o in spec.operations:
        for name, parts in ((o.name, o.inputs), (f"{o.name}Response", o.outputs)):
            joined = "".join(f'\n  <part name="{n}" type="{k}" />' for n, k in parts)
            out.append(f'<message name="{name}">{joined}</message>')
    out.append(f'<portType name="{spec.service}PortType">')
    for o in spec.operations:
        out += [
            f'  <operation name="{o.name}">',
            f"    <documentation>{o.doc}</documentation>",
            f'    <input message="tns:{o.name}"/>',
            f'    <output message="tns:{o.name}Response"/>',
            "  </operation>",
        ]
    out += [
        "</portType>",
        f'<binding name="{spec.service}Binding" type="tns:{spec.service}PortType">',
        '  <soap:binding style="rpc" transport="http://schemas.xmlsoap.org/soap/http"/>',
    ]
    for o in spec.operations:
        out += [
            f'  <operation name="{o.name}">',
            f'    <soap:operation soapAction="{NS}#{o.name}" style="rpc"/>',
            f"    <input>{_BODY}</input>",
            f"    <output>{_BODY}</output>",
            "  </operation>",
        ]
    out += [
        "</binding>",
        f'<service name="{spec.service}">',
        f'  <port name="{spec.service}Port" binding="tns:{spec.service}Binding">',
        f'    <soap:address location="{escape(location, {chr(34): "&quot;"})}"/>',
        "  </port>",
        "</service>",
        "</definitions>",
    ]
    return "\n".join(out).encode("iso-8859-1")


# ----------------------------------------------------------------------------------- nusoap serializer


@dataclass(frozen=True)
class Untyped:
    """A PHP list nusoap serializes without item types: ``SOAP-ENC:arrayType=":[n]"``, items ``xsi:type="xsd:"``
    whose fields get guessed types (str -> xsd:string, None -> bare ``xsi:nil``)."""

    rows: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Typed:
    """A PHP list nusoap serializes as ``tns:<item>[n]`` with typed ``<item xsi:type="tns:<item>">`` entries."""

    item: str
    rows: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Struct:
    """A PHP array for a WSDL struct. ``optionals``: its keys differ from the type's elements, so nusoap leaves
    null fields out instead of sending them as ``xsi:nil``."""

    values: Mapping[str, Any]
    optionals: bool = False


_XSD_TYPES = frozenset({"xsd:string", "xsd:int", "xsd:double", "xsd:date", "xsd:dateTime"})


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


class _Renderer:
    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec

    def part(self, name: str, kind: str, value: Any) -> str:
        if value is None:
            type_spec = self.spec.type(kind)
            if type_spec is not None and type_spec.kind == "seq":
                # nusoap types a nil sequence as an empty SOAP-ENC array of its element (real 20.0.2 answer of
                # getInvoicesForThirdParty: xsi:type="SOAP-ENC:Array" SOAP-ENC:arrayType="tns:invoice[0]")
                [(_element, item)] = type_spec.fields
                return f'<{name} xsi:nil="true" xsi:type="SOAP-ENC:Array" SOAP-ENC:arrayType="{item}[0]"/>'
            return f'<{name} xsi:nil="true" xsi:type="{kind}"/>'
        if kind in _XSD_TYPES:
            text = escape(_scalar_text(value))
            return f'<{name} xsi:type="{kind}">{text}</{name}>' if text else f'<{name} xsi:type="{kind}"/>'
        type_spec = self.spec.type(kind)
        if type_spec is None or type_spec.kind != "struct" or isinstance(value, (list, Untyped, Typed)):
            return self.array(name, value)
        values = value if isinstance(value, Struct) else Struct(value)
        return self.struct(name, kind, type_spec, values)

    def struct(self, name: str, kind: str, type_spec: TypeSpec, value: Struct) -> str:
        inner = []
        for field_name, field_kind in type_spec.fields:
            item = value.values.get(field_name)
            if item is None and value.optionals:
                continue
            inner.append(self.part(field_name, field_kind, item))
        return f'<{name} xsi:type="{kind}">{"".join(inner)}</{name}>'

    def array(self, name: str, value: Any) -> str:
        if isinstance(value, Typed):
            type_spec = self.spec.type(value.item)
            kind = f"tns:{value.item}"
            items = "".join(
                self.struct("item", kind, type_spec, Struct(row)) if type_spec else self.untyped_item(row)
                for row in value.rows
            )
            array_type = f"{kind}[{len(value.rows)}]"
        else:
            rows = value.rows if isinstance(value, Untyped) else tuple(value)
            items = "".join(self.untyped_item(row) for row in rows)
            array_type = f":[{len(rows)}]"
        head = f'<{name} xsi:type="SOAP-ENC:Array" SOAP-ENC:arrayType="{array_type}"'
        return f"{head}>{items}</{name}>" if items else f"{head}/>"

    def untyped_item(self, row: Mapping[str, Any]) -> str:
        return f'<item xsi:type="xsd:">{"".join(self.guessed(k, v) for k, v in row.items())}</item>'

    def guessed(self, name: str, value: Any) -> str:
        if value is None:
            return f'<{name} xsi:nil="true"/>'
        if isinstance(value, (list, tuple, Untyped)):
            return self.array(name, value if isinstance(value, Untyped) else Untyped(tuple(value)))
        if isinstance(value, Mapping):
            return f'<{name} xsi:type="xsd:">{"".join(self.guessed(k, v) for k, v in value.items())}</{name}>'
        kind = "xsd:int" if isinstance(value, int) and not isinstance(value, bool) else "xsd:string"
        text = escape(_scalar_text(value))
        return f'<{name} xsi:type="{kind}">{text}</{name}>' if text else f'<{name} xsi:type="{kind}"/>'


_ENVELOPE_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
    f'xmlns:xsi="{XSI}" xmlns:SOAP-ENC="{SOAP_ENC}" xmlns:tns="{NS}" SOAP-ENV:encodingStyle="{SOAP_ENC}">'
    "<SOAP-ENV:Body>"
)
_ENVELOPE_TAIL = "</SOAP-ENV:Body></SOAP-ENV:Envelope>"


def render_envelope(spec: ServerSpec, operation: OpSpec, parts: Mapping[str, Any]) -> bytes:
    """nusoap's answer to ``operation``: every output part in WSDL order, a missing one as typed ``xsi:nil``."""
    renderer = _Renderer(spec)
    body = "".join(renderer.part(name, kind, parts.get(name)) for name, kind in operation.outputs)
    response = f'<ns1:{operation.name}Response xmlns:ns1="{NS}">{body}</ns1:{operation.name}Response>'
    return (_ENVELOPE_HEAD + response + _ENVELOPE_TAIL).encode("utf-8")


def render_fault(code: str, message: str) -> bytes:
    fault = (
        f'<SOAP-ENV:Fault><faultcode xsi:type="xsd:string">{escape(code)}</faultcode>'
        '<faultactor xsi:type="xsd:string"></faultactor>'
        f'<faultstring xsi:type="xsd:string">{escape(message)}</faultstring>'
        '<detail xsi:type="xsd:string"></detail></SOAP-ENV:Fault>'
    )
    return (_ENVELOPE_HEAD + fault + _ENVELOPE_TAIL).encode("utf-8")


# ------------------------------------------------------------------------------------------- the store

COUNTRIES: Final[Mapping[str, tuple[int, str]]] = {
    "FR": (1, "France"),
    "BE": (2, "Belgium"),
    "IT": (3, "Italy"),
    "ES": (4, "Spain"),
    "DE": (5, "Germany"),
    "CH": (6, "Switzerland"),
    "GB": (7, "United Kingdom"),
    "US": (11, "United States"),
    "CA": (14, "Canada"),
    "NL": (17, "Netherlands"),
    "PT": (25, "Portugal"),
    "LU": (140, "Luxembourg"),
}
_COUNTRY_BY_ID: Final = {cid: (code, label) for code, (cid, label) in COUNTRIES.items()}

_CENT = Decimal("0.01")


def _dec(value: Any, default: str = "0") -> Decimal:
    try:
        return Decimal(str(value).strip() or default)
    except (InvalidOperation, ValueError):
        return Decimal(default)


def _s8(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.00000001")), "f")


def _s4(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.0001")), "f")


def _qty(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")


def _empty_null(value: Any) -> str | None:
    """Dolibarr stores these columns as NULL when empty."""
    text = "" if value is None else str(value).strip()
    return text or None


def _empty_text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _as_int(value: Any, default: int = 0) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


def _list(value: Any) -> list[Any]:
    """nusoap gives one repeated element as a dict and several as a list."""
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def _lines(value: Any) -> list[Mapping[str, Any]]:
    """``order['lines']``: ``{'line': [..]}``, ``{'line': {..}}`` or a list (Dolibarr's "nusoap trick")."""
    if isinstance(value, Mapping) and "line" in value:
        value = value["line"]
    return [line for line in _list(value) if isinstance(line, Mapping)]


@dataclass
class SoapStore:
    """Thirdparties, products, categories, orders and invoices as Dolibarr would hold them."""

    clock: Callable[[], float] = time.time
    thirdparties: dict[int, dict[str, Any]] = field(default_factory=dict)
    products: dict[int, dict[str, Any]] = field(default_factory=dict)
    categories: dict[int, dict[str, Any]] = field(default_factory=dict)
    category_products: dict[int, set[int]] = field(default_factory=dict)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[int, dict[str, Any]] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)

    def now(self) -> int:
        return int(self.clock())

    def next_id(self, table: str) -> int:
        self.counters[f"id:{table}"] += 1
        return self.counters[f"id:{table}"]

    def yymm(self) -> str:
        return datetime.fromtimestamp(self.now(), UTC).strftime("%y%m")

    # -- categories have no SOAP create: tests and the demo add them here
    def add_category(self, label: str, *, description: str = "", parent: int = 0, type_: int = 0) -> int:
        cid = self.next_id("categorie")
        self.categories[cid] = {
            "id": cid,
            "label": label,
            "description": description,
            "fk_parent": parent,
            "type": type_,
        }
        self.category_products.setdefault(cid, set())
        return cid

    def link_product(self, category_id: int, product_id: int) -> None:
        self.category_products.setdefault(category_id, set()).add(product_id)

    def find(self, table: Mapping[int, dict[str, Any]], key: str, value: str) -> list[dict[str, Any]]:
        return [row for row in table.values() if str(row.get(key) or "") == value]


# -------------------------------------------------------------------------------------- PHP-like outputs


def _iso_day(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d") if ts else ""


def _iso_time(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else ""


def _thirdparty_out(tp: Mapping[str, Any]) -> Struct:
    code, label = _COUNTRY_BY_ID.get(_as_int(tp.get("country_id")), (None, None))
    return Struct(
        {
            "id": str(tp["id"]),
            "ref": tp["name"],
            "ref_ext": tp["ref_ext"],
            "status": str(tp["status"]),
            "client": str(tp["client"]),
            "supplier": str(tp["fournisseur"]),
            "customer_code": tp["code_client"],
            "supplier_code": tp["code_fournisseur"],
            "customer_code_accountancy": tp["code_compta"],
            "supplier_code_accountancy": tp["code_compta_fournisseur"],
            "user_creation": None,
            "date_creation": _iso_time(tp["datec"]),
            "user_modification": None,
            "date_modification": _iso_time(tp["tms"]),
            "address": tp["address"],
            "zip": tp["zip"],
            "town": tp["town"],
            "region_code": tp["region_code"],
            "country_id": str(tp["country_id"]) if tp.get("country_id") else None,
            "country_code": code,
            "country": label,
            "phone": tp["phone"],
            "fax": tp["fax"],
            "email": tp["email"],
            "url": tp["url"],
            **{f"profid{i}": tp[f"idprof{i}"] for i in range(1, 7)},
            "capital": tp["capital"],
            "barcode": tp["barcode"],
            "vat_used": str(tp["tva_assuj"]),
            "vat_number": tp["tva_intra"],
            "note_private": tp["note_private"],
            "note_public": tp["note_public"],
        },
        optionals=True,
    )


def _product_out(p: Mapping[str, Any], extrafields: tuple[str, ...]) -> Struct:
    country = _COUNTRY_BY_ID.get(_as_int(p.get("country_id")))
    values: dict[str, Any] = {
        "id": str(p["id"]),
        "ref": p["ref"],
        "ref_ext": p["ref_ext"],
        "label": p["label"],
        "description": p["description"],
        "date_creation": _iso_time(p["datec"]),
        "date_modification": _iso_time(p["tms"]),
        "note": None,  # Product::$note is not loaded any more: the answer never carries it
        "status_tosell": str(p["status"]),
        "status_tobuy": str(p["status_buy"]),
        "type": str(p["type"]),
        "barcode": p["barcode"],
        "barcode_type": p["barcode_type"],
        "country_id": str(p["country_id"]) if p.get("country_id") else "",
        "country_code": country[0] if country else "",
        "custom_code": p["customcode"],  # sic: the WSDL says customcode, so nusoap drops it
        "price_net": _s8(p["price"]),
        "price": _s8(p["price_ttc"]),
        "price_min_net": _s8(p["price_min"]),
        "price_min": _s8(p["price_min_ttc"]),
        "price_base_type": p["price_base_type"],
        "vat_rate": _s4(p["tva_tx"]),
        "vat_npr": "0",
        "localtax1_tx": "0.0000",
        "localtax2_tx": "0.0000",
        "stock_real": _qty(p["stock"]),
        "stock_virtual": _qty(p["stock"]),
        "stock_alert": "0",
        "pmp": "0.00000000",
        "import_key": None,
        "dir": f"{p['ref']}/{p['ref']}/",
        "images": [],
    }
    for name in extrafields:
        values[f"options_{name}"] = p["options"].get(name)
    return Struct(values, optionals=True)


def _category_out(c: Mapping[str, Any]) -> Struct:
    return Struct(
        {
            "id": str(c["id"]),
            "id_mere": str(c["fk_parent"]) if c.get("fk_parent") else None,
            "label": c["label"],
            "description": c["description"],
            "socid": "0",
            "type": str(c["type"]),
            "visible": None,
            "dir": f"{c['id']}/0/{c['id']}/photos/",
            "photos": [],
            "filles": None,
        },
        optionals=True,
    )


def _order_line_out(order: Mapping[str, Any], line: Mapping[str, Any], store: SoapStore) -> dict[str, Any]:
    product = store.products.get(_as_int(line.get("fk_product")))
    return {
        "id": str(line["id"]),
        "fk_commande": str(order["id"]),
        "fk_parent_line": None,
        "desc": line["desc"],
        "qty": _qty(line["qty"]),
        "price": _qty(line["subprice"]),
        "unitprice": _s8(line["subprice"]),
        "vat_rate": _s4(line["tva_tx"]),
        "remise": None,
        "remise_percent": "0",
        "product_id": str(product["id"]) if product else None,
        "product_type": str(line["product_type"]),
        "total_net": _s8(line["total_ht"]),
        "total_vat": _s8(line["total_tva"]),
        "total": _s8(line["total_ttc"]),
        "date_start": "",
        "date_end": "",
        "product_ref": product["ref"] if product else None,
        "product_label": product["label"] if product else None,
        "product_desc": product["description"] if product else None,
    }


def _order_out(order: Mapping[str, Any], store: SoapStore) -> Struct:
    return Struct(
        {
            "id": str(order["id"]),
            "ref": order["ref"],
            "ref_client": order["ref_client"],
            "ref_ext": order["ref_ext"],
            "thirdparty_id": str(order["socid"]),
            "status": str(order["statut"]),
            "billed": str(order["billed"]),
            "total_net": _s8(order["total_ht"]),
            "total_vat": _s8(order["total_tva"]),
            "total_localtax1": "0.00000000",
            "total_localtax2": "0.00000000",
            "total": _s8(order["total_ttc"]),
            "date": _iso_day(order["date"]),
            "date_creation": _iso_time(order["datec"]),
            "date_validation": _iso_time(order["date_valid"]),
            "date_modification": _iso_time(order["tms"]),
            "source": None,
            "note_private": order["note_private"],
            "note_public": order["note_public"],
            "project_id": None,
            "mode_reglement_id": None,
            "mode_reglement_code": None,
            "mode_reglement": None,
            "cond_reglement_id": None,
            "cond_reglement_code": None,
            "cond_reglement": None,
            "cond_reglement_doc": None,
            "date_livraison": "",
            "demand_reason_id": None,
            "lines": Untyped(tuple(_order_line_out(order, line, store) for line in order["lines"])),
        }
    )


def _invoice_line_out(line: Mapping[str, Any], store: SoapStore) -> dict[str, Any]:
    product = store.products.get(_as_int(line.get("fk_product")))
    return {
        "id": str(line["id"]),
        "type": str(line["product_type"]),
        "desc": line["desc"],
        "vat_rate": _s4(line["tva_tx"]),
        "qty": _qty(line["qty"]),
        "unitprice": _s8(line["subprice"]),
        "total_net": _s8(line["total_ht"]),
        "total_vat": _s8(line["total_tva"]),
        "total": _s8(line["total_ttc"]),
        "date_start": "",
        "date_end": "",
        "product_id": str(product["id"]) if product else None,
        "product_ref": product["ref"] if product else None,
        "product_label": product["label"] if product else None,
        "product_desc": product["description"] if product else None,
    }


def _invoice_out(invoice: Mapping[str, Any], store: SoapStore) -> Struct:
    return Struct(
        {
            "id": str(invoice["id"]),
            "ref": invoice["ref"],
            "ref_ext": invoice["ref_ext"] or "",
            "thirdparty_id": str(invoice["socid"]),
            "fk_user_author": "1",
            "fk_user_valid": "1" if invoice["date_valid"] else "",
            "date": _iso_day(invoice["date"]),
            "date_due": _iso_day(invoice["date_lim_reglement"]),
            "date_creation": _iso_time(invoice["datec"]),
            "date_validation": _iso_time(invoice["date_valid"]),
            "date_modification": _iso_time(invoice["tms"]),
            "payment_mode_id": str(invoice["mode_reglement_id"]) if invoice["mode_reglement_id"] else "",
            "type": str(invoice["type"]),
            "total_net": _s8(invoice["total_ht"]),
            "total_vat": _s8(invoice["total_tva"]),
            "total": _s8(invoice["total_ttc"]),
            "note_private": invoice["note_private"] or "",
            "note_public": invoice["note_public"] or "",
            "status": str(invoice["statut"]),
            "close_code": invoice["close_code"] or "",
            "close_note": invoice["close_note"] or "",
            "project_id": None,
            "lines": Typed("line", tuple(_invoice_line_out(line, store) for line in invoice["lines"])),
        }
    )


# ------------------------------------------------------------------------------------------- operations


class _Refused(Exception):
    """An error answer: ``result_code`` / ``result_label`` and any other parts Dolibarr still sends."""

    def __init__(self, code: str, label: str, **parts: Any) -> None:
        super().__init__(f"{code}: {label}")
        self.code = code
        self.label = label
        self.parts = parts


def _ok(**parts: Any) -> dict[str, Any]:
    return {"result": {"result_code": "OK", "result_label": ""}, **parts}


def _not_found(what: str = "") -> _Refused:
    return _Refused("NOT_FOUND", what or "Object not found")


def _by_id_ref(args: Mapping[str, Any]) -> tuple[str, str, str]:
    id_, ref, ref_ext = (_empty_text(args.get(k)) for k in ("id", "ref", "ref_ext"))
    if (id_ and ref) or (id_ and ref_ext) or (ref and ref_ext):
        raise _Refused(
            "BAD_PARAMETERS",
            "Parameter id, ref and ref_ext can't be both provided. You must choose one or other but not both.",
        )
    return id_, ref, ref_ext


class _Dolibarr:
    """The functions of ``server_*.php``, over a :class:`SoapStore` (methods are named as the operations)."""

    def __init__(self, store: SoapStore, product_extrafields: tuple[str, ...], version: str) -> None:
        self.store = store
        self.extrafields = product_extrafields
        self.version = version

    # -- lookups
    def _fetch(
        self, table: Mapping[int, dict[str, Any]], key: str, args: Mapping[str, Any]
    ) -> dict[str, Any]:
        id_, ref, ref_ext = _by_id_ref(args)
        if id_:
            row = table.get(_as_int(id_, -1))
            found = [row] if row is not None else []
        elif ref:
            found = self.store.find(table, key, ref)
        elif ref_ext:
            found = self.store.find(table, "ref_ext", ref_ext)
        else:
            found = []
        if len(found) > 1:
            raise _Refused(
                "DUPLICATE_FOUND",
                f"Object found several times for id={id_} or ref={ref} or ref_ext={ref_ext}",
            )
        if not found:
            raise _not_found(f"Object not found for id={id_} nor ref={ref} nor ref_ext={ref_ext}")
        return found[0]

    # -- other
    def getVersions(self, args: Mapping[str, Any]) -> dict[str, Any]:
        return _ok(dolibarr=self.version, os="Linux simulator", php="8.2.0", webserver="aiohttp")

    def getDocument(self, args: Mapping[str, Any]) -> dict[str, Any]:
        raise _not_found(f"File {_empty_text(args.get('file'))} not found")

    # -- thirdparties
    def _apply_thirdparty(self, tp: dict[str, Any], data: Mapping[str, Any], *, creating: bool) -> None:
        tp["name"] = _empty_text(data.get("ref"))
        tp["ref_ext"] = _empty_null(data.get("ref_ext"))
        tp["status"] = _as_int(data.get("status"), 1 if creating else 0)
        tp["client"] = _as_int(data.get("client"))
        tp["fournisseur"] = _as_int(data.get("supplier"))
        if creating:
            tp["code_client"] = _empty_null(data.get("customer_code"))
            if tp["client"] in (1, 2, 3) and not tp["code_client"]:
                self.store.counters[f"code_client:{self.store.yymm()}"] += 1
                tp["code_client"] = (
                    f"CU{self.store.yymm()}-{self.store.counters[f'code_client:{self.store.yymm()}']:05d}"
                )
        tp["code_fournisseur"] = _empty_null(data.get("supplier_code"))
        tp["code_compta"] = _empty_null(data.get("customer_code_accountancy"))
        tp["code_compta_fournisseur"] = _empty_null(data.get("supplier_code_accountancy"))
        tp["note_private"] = _empty_null(data.get("note_private"))
        tp["note_public"] = _empty_null(data.get("note_public"))
        tp["address"] = _empty_text(data.get("address"))
        tp["zip"] = _empty_null(data.get("zip"))
        tp["town"] = _empty_null(data.get("town"))
        tp["region_code"] = _empty_null(data.get("region_code"))
        country_id = _as_int(data.get("country_id"))
        code = _empty_text(data.get("country_code")).upper()
        if code:
            country_id = COUNTRIES.get(code, (0, ""))[0]
        tp["country_id"] = country_id or None
        tp["phone"] = _empty_null(data.get("phone"))
        tp["fax"] = _empty_null(data.get("fax"))
        tp["email"] = _empty_null(data.get("email"))
        tp["url"] = _empty_null(data.get("url"))
        for i in range(1, 7):
            tp[f"idprof{i}"] = _empty_text(data.get(f"profid{i}"))
        tp["capital"] = _empty_null(data.get("capital"))
        tp["barcode"] = _empty_null(data.get("barcode"))
        tp["tva_assuj"] = _as_int(data.get("vat_used"))
        tp["tva_intra"] = _empty_text(data.get("vat_number"))
        tp["tms"] = self.store.now()

    def getThirdParty(self, args: Mapping[str, Any]) -> dict[str, Any]:
        tp = self._fetch(self.store.thirdparties, "name", args)
        return _ok(thirdparty=_thirdparty_out(tp))

    def createThirdParty(self, args: Mapping[str, Any]) -> dict[str, Any]:
        data = args.get("thirdparty") or {}
        if not isinstance(data, Mapping) or not _empty_text(data.get("ref")):
            raise _Refused("KO", "Name is mandatory.")
        tid = self.store.next_id("societe")
        tp: dict[str, Any] = {"id": tid, "datec": self.store.now()}
        self._apply_thirdparty(tp, data, creating=True)
        if tp["code_client"] and self.store.find(self.store.thirdparties, "code_client", tp["code_client"]):
            raise _Refused("KO", "ErrorCustomerCodeAlreadyUsed")
        self.store.thirdparties[tid] = tp
        return _ok(id=str(tid), ref=tp["name"])

    def updateThirdParty(self, args: Mapping[str, Any]) -> dict[str, Any]:
        data = args.get("thirdparty") or {}
        if not isinstance(data, Mapping) or not _empty_text(data.get("id")):
            raise _Refused("KO", "Thirdparty id is mandatory.")
        tp = self.store.thirdparties.get(_as_int(data.get("id"), -1))
        if tp is None:
            raise _Refused("NOT_FOUND", f"Thirdparty id={_empty_text(data.get('id'))} cannot be found")
        if not _empty_text(data.get("ref")):
            raise _Refused("KO", "ErrorFieldRequired")
        self._apply_thirdparty(tp, data, creating=False)
        return _ok(id=str(tp["id"]))

    def getListOfThirdParties(self, args: Mapping[str, Any]) -> dict[str, Any]:
        filters = args.get("filterthirdparty")
        rows = []
        for tp in sorted(self.store.thirdparties.values(), key=lambda t: t["id"]):
            if isinstance(filters, Mapping):
                if _as_int(filters.get("client")) > 0 and tp["client"] != _as_int(filters.get("client")):
                    continue
                if _as_int(filters.get("supplier")) > 0 and tp["fournisseur"] != _as_int(
                    filters.get("supplier")
                ):
                    continue
                name = _empty_text(filters.get("name"))
                if name and name.lower() not in tp["name"].lower():
                    continue
            country = _COUNTRY_BY_ID.get(_as_int(tp.get("country_id")))
            rows.append(
                {
                    "id": str(tp["id"]),
                    "ref": tp["name"],
                    "ref_ext": tp["ref_ext"],
                    "address": tp["address"],
                    "zip": tp["zip"],
                    "town": tp["town"],
                    "country": country[1] if country else None,
                    "phone": tp["phone"],
                    "fax": tp["fax"],
                    "url": tp["url"],
                }
            )
        return _ok(thirdparties=Untyped(tuple(rows)))

    def deleteThirdParty(self, args: Mapping[str, Any]) -> dict[str, Any]:
        try:
            tp = self._fetch(self.store.thirdparties, "name", args)
        except _Refused as exc:
            if exc.code == "NOT_FOUND":
                raise _Refused(
                    "NOT_FOUND", f"Thirdparty id={_empty_text(args.get('id'))} ref= ref_ext= cannot be found"
                ) from None
            raise
        used = any(
            doc["socid"] == tp["id"] for doc in [*self.store.orders.values(), *self.store.invoices.values()]
        )
        if used:
            raise _Refused("KO", "ErrorRecordHasChildren")
        del self.store.thirdparties[tp["id"]]
        return _ok(id=str(tp["id"]))

    # -- products
    def _apply_product(self, p: dict[str, Any], data: Mapping[str, Any]) -> None:
        p["type"] = _as_int(data.get("type"))
        p["label"] = _empty_text(data.get("label"))
        p["description"] = _empty_text(data.get("description"))
        p["status"] = _as_int(data.get("status_tosell"))
        p["status_buy"] = _as_int(data.get("status_tobuy"))
        p["tva_tx"] = _dec(data.get("vat_rate"))
        base = _empty_text(data.get("price_base_type")) or "HT"
        net, gross = _dec(data.get("price_net")), _dec(data.get("price"))
        if net > 0:
            base = "HT"
        if gross > 0:
            base = "TTC"
        rate = Decimal(1) + p["tva_tx"] / Decimal(100)
        if base == "TTC":
            p["price_ttc"], p["price"] = gross, gross / rate
        else:
            p["price"], p["price_ttc"] = net, net * rate
        p["price_base_type"] = base
        if _empty_text(data.get("barcode")):
            p["barcode"] = _empty_text(data.get("barcode"))
            p["barcode_type"] = _empty_text(data.get("barcode_type"))
        p["country_id"] = _as_int(data.get("country_id")) or None
        code = _empty_text(data.get("country_code")).upper()
        if code:
            p["country_id"] = COUNTRIES.get(code, (0, ""))[0] or None
        p["customcode"] = _empty_null(data.get("customcode"))
        for name in self.extrafields:
            p["options"][name] = _empty_null(data.get(f"options_{name}"))
        p["tms"] = self.store.now()

    def _check_prices(self, data: Mapping[str, Any]) -> None:
        if _dec(data.get("price_net")) > 0 and _dec(data.get("price")) > 0:
            raise _Refused("KO", "You must choose between price or price_net to provide price.")

    def getProductOrService(self, args: Mapping[str, Any]) -> dict[str, Any]:
        p = self._fetch(self.store.products, "ref", args)
        return _ok(product=_product_out(p, self.extrafields))

    def createProductOrService(self, args: Mapping[str, Any]) -> dict[str, Any]:
        data = args.get("product") or {}
        if not isinstance(data, Mapping):
            raise _Refused("KO", "ErrorFieldRequired")
        self._check_prices(data)
        ref = _empty_text(data.get("ref"))
        if not ref or not _empty_text(data.get("label")):
            raise _Refused("KO", "ErrorFieldRequired")
        if self.store.find(self.store.products, "ref", ref):
            raise _Refused("KO", "ErrorProductAlreadyExists")
        pid = self.store.next_id("product")
        p: dict[str, Any] = {
            "id": pid,
            "ref": ref,
            "ref_ext": _empty_null(data.get("ref_ext")),
            "datec": self.store.now(),
            "barcode": None,
            "barcode_type": None,
            "price_min": Decimal(0),
            "price_min_ttc": Decimal(0),
            "stock": Decimal(0),
            "options": {},
        }
        self._apply_product(p, data)
        self.store.products[pid] = p
        return _ok(id=str(pid))

    def updateProductOrService(self, args: Mapping[str, Any]) -> dict[str, Any]:
        data = args.get("product") or {}
        if not isinstance(data, Mapping):
            raise _Refused("KO", "ErrorFieldRequired")
        self._check_prices(data)
        p = self.store.products.get(_as_int(data.get("id"), -1))
        if p is None:
            raise _Refused("KO", "ErrorRecordNotFound")
        if "ref" in data and _empty_text(data.get("ref")):
            ref = _empty_text(data.get("ref"))
            if any(other["id"] != p["id"] for other in self.store.find(self.store.products, "ref", ref)):
                raise _Refused("KO", "ErrorProductAlreadyExists")
            p["ref"] = ref
        if "ref_ext" in data:
            p["ref_ext"] = _empty_null(data.get("ref_ext"))
        if _empty_text(data.get("stock_real")):
            p["stock"] = _dec(
                data.get("stock_real")
            )  # the stock module is off in this simulator: no movement
        self._apply_product(p, data)
        return _ok(id=str(p["id"]))

    def deleteProductOrService(self, args: Mapping[str, Any]) -> dict[str, Any]:
        ids = [part for part in _empty_text(args.get("listofid")).split(",") if part.strip()]
        if not ids:
            raise _Refused("KO", "List of Id of products or services to delete are required.", nbdeleted=0)
        for raw in ids:
            if _as_int(raw, -1) not in self.store.products:
                raise _Refused("KO", f"Product or service with id {raw.strip()} not found", nbdeleted=0)
        for raw in ids:
            pid = _as_int(raw)
            del self.store.products[pid]
            for linked in self.store.category_products.values():
                linked.discard(pid)
        return _ok(nbdeleted=len(ids))

    def getListOfProductsOrServices(self, args: Mapping[str, Any]) -> dict[str, Any]:
        filters = args.get("filterproduct")
        rows = []
        for p in sorted(self.store.products.values(), key=lambda row: row["id"]):
            if isinstance(filters, Mapping):
                # PHP 8: '' >= 0 and '-1' >= 0 are false, so only a real type filters; the status keys filter on
                # (int) $val whenever they are present, empty or not.
                type_value = filters.get("type")
                if (
                    isinstance(type_value, str)
                    and type_value.strip().isdigit()
                    and p["type"] != int(type_value)
                ):
                    continue
                if "status_tosell" in filters and p["status"] != _as_int(filters.get("status_tosell")):
                    continue
                if "status_tobuy" in filters and p["status_buy"] != _as_int(filters.get("status_tobuy")):
                    continue
            rows.append({"id": str(p["id"]), "ref": p["ref"], "ref_ext": p["ref_ext"]})
        return _ok(products=Untyped(tuple(rows)))

    def getProductsForCategory(self, args: Mapping[str, Any]) -> dict[str, Any]:
        cid = _as_int(args.get("id"))
        if not cid:
            raise _Refused("BAD_PARAMETERS", "Parameter id must be provided.")
        if cid not in self.store.categories:
            raise _not_found(f"Object not found for id={cid}")
        rows = []
        for pid in sorted(self.store.category_products.get(cid, set())):
            p = self.store.products.get(pid)
            if p is None or p["status"] <= 0:
                continue
            values = dict(_product_out(p, self.extrafields).values)
            values.pop("price_min_net", None)
            values.pop("price_min", None)
            rows.append(values)
        return _ok(products=Untyped(tuple(rows)) if rows else None)

    # -- categories
    def getCategory(self, args: Mapping[str, Any]) -> dict[str, Any]:
        category = self.store.categories.get(_as_int(args.get("id"), -1))
        if category is None:
            raise _not_found(f"Object not found for id={_empty_text(args.get('id'))}")
        return _ok(categorie=_category_out(category))

    # -- documents
    def _document_lines(self, data: Mapping[str, Any], *, recompute: bool) -> list[dict[str, Any]]:
        """Order lines go through Commande::addline (totals recomputed from subprice, qty, VAT; createOrder
        sets no discount); invoice lines are FactureLigne objects inserted with the totals they carry."""
        lines = []
        for raw in _lines(data.get("lines")):
            qty, subprice, vat = _dec(raw.get("qty")), _dec(raw.get("unitprice")), _dec(raw.get("vat_rate"))
            if recompute or not _empty_text(raw.get("total_net")):
                # calcul_price_total: the TTC from the unrounded HT, the VAT what is left
                net = (qty * subprice).quantize(_CENT, rounding=ROUND_HALF_UP)
                total = (qty * subprice * (1 + vat / Decimal(100))).quantize(_CENT, rounding=ROUND_HALF_UP)
                tva = total - net
            else:
                net, tva, total = (
                    _dec(raw.get("total_net")),
                    _dec(raw.get("total_vat")),
                    _dec(raw.get("total")),
                )
            product_id = _as_int(raw.get("product_id"))
            if product_id and product_id not in self.store.products:
                raise _Refused("KO", f"ErrorProductNotFound {product_id}")
            lines.append(
                {
                    "id": self.store.next_id("line"),
                    "fk_product": product_id or None,
                    "product_type": 0 if recompute else _as_int(raw.get("type")),
                    "desc": _empty_text(raw.get("desc")),
                    "qty": qty,
                    "subprice": subprice,
                    "tva_tx": vat,
                    "total_ht": net,
                    "total_tva": tva,
                    "total_ttc": total,
                }
            )
        return lines

    @staticmethod
    def _totals(doc: dict[str, Any]) -> None:
        doc["total_ht"] = sum((line["total_ht"] for line in doc["lines"]), Decimal(0))
        doc["total_tva"] = sum((line["total_tva"] for line in doc["lines"]), Decimal(0))
        doc["total_ttc"] = sum((line["total_ttc"] for line in doc["lines"]), Decimal(0))

    def _day(self, value: Any) -> int | None:
        text = _empty_text(value)
        if not text:
            return None
        try:
            return int(datetime.strptime(text[:10], "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
        except ValueError:
            return None

    def _socid(self, value: Any, table: str) -> int:
        socid = _as_int(value)
        if socid not in self.store.thirdparties:
            # the real 20.0.2: the INSERT fails on the foreign key, and $newobject->error is MariaDB's words
            raise _Refused(
                "KO",
                "Cannot add or update a child row: a foreign key constraint fails (`dolibarr`.`llx_"
                f"{table}`, CONSTRAINT `fk_{table}_fk_soc` FOREIGN KEY (`fk_soc`) REFERENCES `llx_societe` "
                "(`rowid`))",
            )
        return socid

    # -- orders
    def getOrder(self, args: Mapping[str, Any]) -> dict[str, Any]:
        order = self._fetch(self.store.orders, "ref", args)
        return _ok(order=_order_out(order, self.store))

    def createOrder(self, args: Mapping[str, Any]) -> dict[str, Any]:
        data = args.get("order") or {}
        if not isinstance(data, Mapping):
            raise _Refused("KO", "ErrorBadParameters")
        oid = self.store.next_id("commande")
        now = self.store.now()
        order: dict[str, Any] = {
            "id": oid,
            "ref": f"(PROV{oid})",
            "ref_client": None,  # createOrder does not read ref_client (server_order.php)
            "ref_ext": _empty_null(data.get("ref_ext")),
            "socid": self._socid(data.get("thirdparty_id"), "commande"),
            "statut": 0,
            "billed": 0,
            "date": self._day(data.get("date")) or now,
            "datec": now,
            "date_valid": None,
            "tms": now,
            "note_private": _empty_null(data.get("note_private")),
            "note_public": _empty_null(data.get("note_public")),
            "lines": self._document_lines(data, recompute=True),
        }
        self._totals(order)
        if _as_int(data.get("status")) == 1:
            self._validate_order(order)
        self.store.orders[oid] = order
        return _ok(id=str(oid), ref=order["ref"])

    def _validate_order(self, order: dict[str, Any]) -> None:
        if order["statut"] != 0:
            return  # Commande::valid answers 0 ("already validated"): the webservice says OK
        key = f"commande:{self.store.yymm()}"
        self.store.counters[key] += 1
        order["ref"] = f"CO{self.store.yymm()}-{self.store.counters[key]:04d}"
        order["statut"] = 1
        order["date_valid"] = order["tms"] = self.store.now()

    def validOrder(self, args: Mapping[str, Any]) -> dict[str, Any]:
        order = self.store.orders.get(_as_int(args.get("id"), -1))
        if order is None:
            raise _Refused("KO", "")  # server_order.php: $errorlabel = $newobject->error of an unset object
        if order["statut"] == -1:
            raise _Refused("KO", "ErrorOrderStatusCanceled")
        self._validate_order(order)
        return _ok()

    def updateOrder(self, args: Mapping[str, Any]) -> dict[str, Any]:
        data = args.get("order") or {}
        if not isinstance(data, Mapping):
            raise _Refused("KO", "Order id or ref or ref_ext is mandatory.")
        id_, ref, ref_ext = (_empty_text(data.get(k)) for k in ("id", "ref", "ref_ext"))
        if not (id_ or ref or ref_ext):
            raise _Refused("KO", "Order id or ref or ref_ext is mandatory.")
        keys = {"id": id_} if id_ else {"ref": ref} if ref else {"ref_ext": ref_ext}
        try:
            order = self._fetch(self.store.orders, "ref", keys)
        except _Refused:
            raise _Refused(
                "NOT_FOUND", f"Order id={id_} ref={ref} ref_ext={ref_ext} cannot be found"
            ) from None
        status = data.get("status")
        if isinstance(status, str) and status.strip() != "":
            wanted = _as_int(status)
            if wanted == -1:
                if order["statut"] == 1:  # Commande::cancel: UPDATE ... WHERE fk_statut = 1, OK either way
                    order["statut"] = -1
            elif wanted == 1:
                self._validate_order(order)
            elif wanted == 0 and order["statut"] in (-1, 3):  # set_reopen: back to validated
                order["statut"] = 1
            elif wanted == 3:
                if order["statut"] == 0:
                    raise _Refused("KO", "ErrorOrderNotValidated")
                order["statut"] = 3
            order["tms"] = self.store.now()
        billed = data.get("billed")
        if isinstance(billed, str) and billed.strip() != "":
            order["billed"] = 1  # server_order.php calls classifyBilled() whatever the value
        return _ok(id=str(order["id"]), ref=order["ref"], ref_ext=order["ref_ext"])

    def getOrdersForThirdParty(self, args: Mapping[str, Any]) -> dict[str, Any]:
        who = _empty_text(args.get("idthirdparty"))
        if not who:
            raise _Refused("BAD_PARAMETERS", "Parameter id is not provided")
        rows = []
        for order in sorted(self.store.orders.values(), key=lambda o: o["id"]):
            if who != "all" and order["socid"] != _as_int(who):
                continue
            values = dict(_order_out(order, self.store).values)
            values["socid"] = values.pop("thirdparty_id")
            rows.append(values)
        return _ok(orders=Untyped(tuple(rows)))

    # -- invoices
    def getInvoice(self, args: Mapping[str, Any]) -> dict[str, Any]:
        invoice = self._fetch(self.store.invoices, "ref", args)
        return _ok(invoice=_invoice_out(invoice, self.store))

    def _new_invoice(self, socid: int, lines: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
        fid = self.store.next_id("facture")
        now = self.store.now()
        day = fields.pop("date", None) or now
        invoice: dict[str, Any] = {
            "id": fid,
            "ref": f"(PROV{fid})",
            "ref_ext": None,
            "socid": socid,
            "type": 0,
            "statut": 0,
            "paye": 0,
            "date": day,
            "date_lim_reglement": day + 86400,  # payment term "due upon receipt" (1 day) of a fresh install
            "datec": now,
            "date_valid": None,
            "tms": now,
            "mode_reglement_id": None,
            "note_private": None,
            "note_public": None,
            "close_code": None,
            "close_note": None,
            "lines": lines,
            "origin_order": None,
        }
        invoice.update(fields)
        self._totals(invoice)
        self.store.invoices[fid] = invoice
        return invoice

    def createInvoice(self, args: Mapping[str, Any]) -> dict[str, Any]:
        data = args.get("invoice") or {}
        if not isinstance(data, Mapping) or not any(
            _empty_text(data.get(k)) for k in ("id", "ref", "ref_ext")
        ):
            raise _Refused("KO", "Invoice id or ref or ref_ext is mandatory.")
        invoice = self._new_invoice(
            self._socid(data.get("thirdparty_id"), "facture"),
            self._document_lines(data, recompute=False),
            ref_ext=_empty_null(data.get("ref_ext")),
            type=_as_int(data.get("type")),
            date=self._day(data.get("date")),
            note_private=_empty_null(data.get("note_private")),
            note_public=_empty_null(data.get("note_public")),
            mode_reglement_id=_as_int(data.get("payment_mode_id")) or None,
        )
        if _as_int(data.get("status")) == 1:
            self._validate_invoice(invoice)
        return _ok(id=str(invoice["id"]), ref=invoice["ref"], ref_ext=invoice["ref_ext"])

    def createInvoiceFromOrder(self, args: Mapping[str, Any]) -> dict[str, Any]:
        keys = {
            "id": args.get("id_order"),
            "ref": args.get("ref_order"),
            "ref_ext": args.get("ref_ext_order"),
        }
        if not any(_empty_text(v) for v in keys.values()):
            raise _Refused("KO", "order id or ref or ref_ext is mandatory.")
        order = self._fetch(self.store.orders, "ref", keys)
        lines = [
            {**{k: v for k, v in line.items() if k != "id"}, "id": self.store.next_id("line")}
            for line in order["lines"]
        ]
        # Facture::createFromOrder: today's date, lines, customer, notes; no ref_ext.
        invoice = self._new_invoice(
            order["socid"],
            lines,
            note_private=order["note_private"],
            note_public=order["note_public"],
            origin_order=order["id"],
        )
        return _ok(id=str(invoice["id"]), ref=invoice["ref"], ref_ext=invoice["ref_ext"])

    def _validate_invoice(self, invoice: dict[str, Any]) -> None:
        if invoice["statut"] != 0:
            return
        key = f"facture:{self.store.yymm()}"
        self.store.counters[key] += 1
        invoice["ref"] = f"FA{self.store.yymm()}-{self.store.counters[key]:04d}"
        invoice["statut"] = 1
        invoice["date_valid"] = invoice["tms"] = self.store.now()

    def updateInvoice(self, args: Mapping[str, Any]) -> dict[str, Any]:
        data = args.get("invoice") or {}
        if not isinstance(data, Mapping) or not any(
            _empty_text(data.get(k)) for k in ("id", "ref", "ref_ext")
        ):
            raise _Refused("KO", "Invoice id or ref or ref_ext is mandatory.")
        id_, ref, ref_ext = (_empty_text(data.get(k)) for k in ("id", "ref", "ref_ext"))
        try:
            invoice = self._fetch(
                self.store.invoices,
                "ref",
                {"id": id_} if id_ else {"ref": ref} if ref else {"ref_ext": ref_ext},
            )
        except _Refused:
            raise _Refused(
                "NOT_FOUND", f"Invoice id={id_} ref={ref} ref_ext={ref_ext} cannot be found"
            ) from None
        status = data.get("status")
        if isinstance(status, str) and status.strip() != "":
            wanted = _as_int(status)
            current = invoice["statut"]
            if wanted == 0 and current == 1:
                invoice["statut"] = 0
            elif wanted == 1:
                self._validate_invoice(invoice)
            elif wanted == 2:
                if current != 1 and current != 2:
                    raise _Refused("KO", "ErrorInvoiceNotValidated")
                invoice["statut"], invoice["paye"] = 2, 1
                invoice["close_code"] = _empty_null(data.get("close_code"))
                invoice["close_note"] = _empty_null(data.get("close_note"))
            elif wanted == 3:
                if current not in (1, 3):
                    raise _Refused("KO", "ErrorInvoiceNotValidated")
                invoice["statut"] = 3
                invoice["close_code"] = _empty_null(data.get("close_code")) or "abandon"
                invoice["close_note"] = _empty_null(data.get("close_note"))
            invoice["tms"] = self.store.now()
        return _ok(id=str(invoice["id"]), ref=invoice["ref"], ref_ext=invoice["ref_ext"])

    def getInvoicesForThirdParty(self, args: Mapping[str, Any]) -> dict[str, Any]:
        if not _empty_text(args.get("idthirdparty")):
            raise _Refused("BAD_PARAMETERS", "Parameter idthirdparty is not provided")
        # Dolibarr 20.0.2's server_invoice.php selects llx_facture.total, a column the table no longer has
        # (total_ht): every call answers this, invoices nil, HTTP 200 (as the real pair does)
        raise _Refused("DB_ERROR_NOSUCHFIELD", "Unknown column 'total' in 'SELECT'", invoices=None)


# ------------------------------------------------------------------------------------------- the app

STORE_KEY: Final = web.AppKey("soap_store", SoapStore)
OPERATIONS_KEY: Final = web.AppKey("soap_operations", Counter)
_CONFIG_KEY: Final = web.AppKey("soap_config", dict)

_MODULE_OFF_PAGE = "Le module WebServices n'est pas actif (WarningModuleNotActive).<br><br>Activez-le."


def _php_value(element: Any) -> Any:
    """An incoming element as nusoap hands it to PHP: text ('' when empty), or an array of its children where
    a repeated name becomes a list."""
    if element.get(f"{{{XSI}}}nil") in ("true", "1"):
        return None
    children = [child for child in element if isinstance(child.tag, str)]
    if not children:
        return element.text or ""
    out: dict[str, Any] = {}
    repeated: set[str] = set()
    for child in children:
        name = etree.QName(child).localname
        value = _php_value(child)
        if name not in out:
            out[name] = value
            continue
        if name not in repeated:
            out[name] = [out[name]]
            repeated.add(name)
        out[name].append(value)
    return out


def _check_authentication(auth: Any, config: Mapping[str, Any]) -> _Refused | None:
    """``core/lib/ws.lib.php`` check_authentication."""
    auth = auth if isinstance(auth, Mapping) else {}
    if _empty_text(auth.get("dolibarrkey")) != config["key"]:
        return _Refused(
            "BAD_VALUE_FOR_SECURITY_KEY",
            "Value provided into dolibarrkey entry field does not match security key defined in Webservice "
            "module setup",
        )
    entity = _empty_text(auth.get("entity"))
    if entity and not entity.isdigit():
        return _Refused(
            "BAD_PARAMETERS",
            "The entity parameter must be empty (or filled with numeric id of instance if multicompany module "
            "is used).",
        )
    if (
        _empty_text(auth.get("login")) != config["login"]
        or (auth.get("password") or "") != config["password"]
    ):
        return _Refused("BAD_CREDENTIALS", "Bad value for login or password")
    return None


def _xml(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, headers={"Content-Type": "text/xml; charset=UTF-8"})


async def _handle(request: web.Request) -> web.StreamResponse:
    server = request.match_info["server"]
    config = request.app[_CONFIG_KEY]
    spec: ServerSpec | None = config["specs"].get(server)
    if spec is None:
        raise web.HTTPNotFound(text="Not Found")
    if not config["module_enabled"]:
        return web.Response(text=_MODULE_OFF_PAGE, content_type="text/html")
    if request.method == "GET":
        if "wsdl" in request.query:
            location = f"{request.scheme}://{request.host}/webservices/server_{server}.php"
            return web.Response(
                body=render_wsdl(server, location, config["specs"]),
                headers={"Content-Type": "text/xml; charset=ISO-8859-1"},
            )
        names = "".join(f"<li>{o.name}</li>" for o in spec.operations)
        return web.Response(
            text=f"<html><body><h1>{spec.service}</h1><ul>{names}</ul></body></html>",
            content_type="text/html",
        )
    call = _call_of(await request.read())
    if call is None:
        return _xml(
            render_fault("SOAP-ENV:Client", "error in msg parsing:\nXML error parsing SOAP payload"), 500
        )
    name = etree.QName(call).localname
    operation = spec.operation(name)
    if operation is None:
        return _xml(
            render_fault(
                "SOAP-ENV:Client", f"Operation '{name}' is not defined in the WSDL for this service"
            ),
            500,
        )
    request.app[OPERATIONS_KEY][name] += 1
    # NuSOAP calls the PHP function with the parts by position (call_user_func_array over array_values), whatever
    # their names: a request that leaves out a part before another one shifts the others (real 20.0.2)
    given = [child for child in call if isinstance(child.tag, str)]
    args = {name: _php_value(child) for (name, _kind), child in zip(operation.inputs, given, strict=False)}
    refused = _check_authentication(args.get("authentication"), config)
    if refused is None and name in config["denied"]:
        refused = _Refused("PERMISSION_DENIED", "User does not have permission for this request")
    if refused is None:
        try:
            parts = getattr(config["dolibarr"], name)(args)
        except _Refused as exc:
            refused = exc
    if refused is not None:
        parts = {"result": {"result_code": refused.code, "result_label": refused.label}, **refused.parts}
    if len(operation.outputs) == 1:
        # nusoap with a single output part takes the whole returned array as that part's value: the struct
        # looks for result_code / result_label at the top, finds neither, and answers an empty <result> whatever
        # happened, OK, KO or a bad key (validOrder on the real 20.0.2)
        [(only, _kind)] = operation.outputs
        parts = {only: Struct(parts, optionals=True)}
    return _xml(render_envelope(spec, operation, parts))


def _call_of(raw: bytes) -> Any:
    """The operation element of a request envelope, or None when the body is not one."""
    try:
        doc = etree.fromstring(raw, parser=etree.XMLParser(resolve_entities=False, no_network=True))
        body = doc.find(f"{{{SOAP_ENV}}}Body")
        return next(child for child in (body if body is not None else []) if isinstance(child.tag, str))
    except (etree.XMLSyntaxError, StopIteration):
        return None


# the creates whose transaction can deadlock; Dolibarr answers result_code KO with the object's error, the
# database's words (server_productorservice.php, server_order.php ...: $errorlabel = $newobject->error)
_DEADLOCK_PRONE = frozenset({"createProductOrService", "createOrder", "createInvoice", "createThirdParty"})
DEADLOCK = "Deadlock found when trying to get lock; try restarting transaction"


async def _deadlock_answer(request: web.Request) -> web.StreamResponse | None:
    """The fault plan's ``deadlock`` kind: a create answers KO with the deadlock (HTTP 200), nothing stored."""
    spec = request.app[_CONFIG_KEY]["specs"].get(request.match_info.get("server", ""))
    call = _call_of(await request.read()) if request.method == "POST" and spec is not None else None
    if call is None or etree.QName(call).localname not in _DEADLOCK_PRONE:
        return None
    operation = spec.operation(etree.QName(call).localname)
    if operation is None:
        return None
    return _xml(render_envelope(spec, operation, {"result": {"result_code": "KO", "result_label": DEADLOCK}}))


def create_app(
    *,
    key: str = DEFAULT_KEY,
    login: str = DEFAULT_LOGIN,
    password: str = DEFAULT_PASSWORD,
    faults: FaultPlan | None = None,
    store: SoapStore | None = None,
    version: str = "20.0.2",
    product_extrafields: tuple[str, ...] = ("longdescription",),
    denied: frozenset[str] = frozenset(),
    module_enabled: bool = True,
) -> web.Application:
    """The simulator. ``denied``: operations answered PERMISSION_DENIED; ``module_enabled=False``: every page
    is Dolibarr's "module not active" text (HTTP 200)."""
    app = web.Application()
    install(app, faults, answers={"deadlock": _deadlock_answer})
    data = store or SoapStore()
    app[STORE_KEY] = data
    app[OPERATIONS_KEY] = Counter()
    app[_CONFIG_KEY] = {
        "key": key,
        "login": login,
        "password": password,
        "specs": wsdl_specs(product_extrafields),
        "dolibarr": _Dolibarr(data, product_extrafields, version),
        "denied": denied,
        "module_enabled": module_enabled,
    }
    app.router.add_route("*", "/webservices/server_{server}.php", _handle)
    return app


async def _serve(port: int, key: str, login: str, password: str) -> None:
    running = await start_app(create_app(key=key, login=login, password=password), port=port)
    print(
        f"Dolibarr SOAP simulator on {running.url}/webservices/server_<name>.php (key {key!r}, login {login!r})"
    )
    try:
        await asyncio.Event().wait()
    finally:
        await running.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Dolibarr 20.0.2 SOAP webservice simulator")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--key", default=DEFAULT_KEY)
    parser.add_argument("--login", default=DEFAULT_LOGIN)
    parser.add_argument("--password", default=DEFAULT_PASSWORD)
    options = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(options.port, options.key, options.login, options.password))


if __name__ == "__main__":
    main()

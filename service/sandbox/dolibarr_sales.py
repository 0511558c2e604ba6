"""Orders, invoices and payments of the simulated Dolibarr (a mixin of ``DolibarrData``).

Totals follow ``calcul_price_total()`` (core/lib/price.lib.php) with MAIN_MAX_DECIMALS_TOT = 2 and
MAIN_MAX_DECIMALS_UNIT = 5, half-up rounding:

* HT lines: ``total_ht = round(qty * pu * (1 - remise/100))``,
  ``total_ttc = round(unrounded_ht * (1 + tva/100))``, ``total_tva = total_ttc - total_ht``;
* TTC lines: ``total_ttc = round(qty * pu_ttc * (1 - remise/100))``,
  ``total_ht = round(that / (1 + tva/100))``, ``total_tva = total_ttc - total_ht``, and the stored
  ``subprice`` is ``round(pu_ttc / (1 + tva/100), 5)``;
* document totals are the sums of the line totals (``update_price()``).

Numbering: drafts are ``(PROV<id>)``; validation gives ``CO{yymm}-{nnnn}`` (orders, mod_commande_marbre),
``FA{yymm}-{nnnn}`` (invoices and replacements, mod_facture_terre), ``AV...`` (credit notes), ``AC...``
(deposits) with {yymm} from the document date and one counter per prefix that does not restart each month.
Payments are ``PAY{yymm}-{nnnn}``.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from service.sandbox import dolibarr_database as database
from service.sandbox import dolibarr_shapes as shapes
from service.sandbox.dolibarr_table import (
    PAYMENT_TERMS,
    DolibarrError,
    Obj,
    PhpObject,
    Table,
    alphanohtml,
    as_ts,
    day_start,
    dec,
    mt,
    mu,
    num,
    price2num,
    restricthtml,
    s4,
    s8,
    sfloat,
    sql_datetime,
    yymm,
)

ORDER_DRAFT, ORDER_VALIDATED, ORDER_SHIPPING, ORDER_CLOSED, ORDER_CANCELED = 0, 1, 2, 3, -1
INVOICE_DRAFT, INVOICE_VALIDATED, INVOICE_PAID, INVOICE_ABANDONED = 0, 1, 2, 3
INVOICE_PREFIX = {0: "FA", 1: "FA", 2: "AV", 3: "AC"}


def _err(status: int, message: str, source: str, **kw: Any) -> DolibarrError:
    return DolibarrError(status, message, source, **kw)


def success_body(message: str) -> dict[str, Any]:
    return {"success": {"code": 200, "message": message}}


def calc_line(
    qty: Decimal, pu: Decimal, remise: Decimal, tva: Decimal, base: str
) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """``calcul_price_total``: (total_ht, total_tva, total_ttc, pu_ht)."""
    tot = pu * qty * (1 - remise / 100)
    if base == "TTC":
        ttc = mt(tot)
        ht = mt(tot / (1 + tva / 100))
        return ht, mt(ttc - ht), ttc, mu(pu / (1 + tva / 100))
    ht = mt(tot)
    ttc = mt(tot * (1 + tva / 100))
    return ht, mt(ttc - ht), ttc, pu


class SalesMixin:
    if TYPE_CHECKING:
        products: Table
        thirdparties: Table
        contacts: Table
        warehouses: Table
        bank_accounts: Table
        bank_lines: list[dict[str, Any]]
        main_currency: str
        multicurrency_enabled: bool
        public_url: str
        counters: dict[str, int]

        def now(self) -> int: ...
        def next_counter(self, name: str) -> int: ...
        def product(self, pid: int) -> Obj: ...
        def payment_type(self, pid: Any) -> Obj | None: ...
        def clean_array_options(
            self, elementtype: str, options: Any, *, via: str = "api"
        ) -> dict[str, Any]: ...
        def move_stock(
            self,
            product_id: int,
            warehouse_id: int,
            qty: Decimal,
            *,
            label: str = "",
            inventorycode: str | None = None,
            price: Decimal = ...,
            mtype: int | None = None,
            origin: tuple[str, int] | None = None,
        ) -> int: ...

    def _init_sales(self) -> None:
        self.orders = Table("commande", ("ref", "ref_ext", "ref_client"))
        self.invoices = Table("facture", ("ref", "ref_ext", "ref_client"))
        self.payments = Table("paiement", ("ref",))
        self.order_lines: dict[int, int] = {}  # line id -> order id
        self.invoice_lines: dict[int, int] = {}
        self._line_ids = {"commande": 1, "facture": 1}
        # element_element rows: id -> (source type, source id, target type, target id)
        self.links: dict[int, tuple[str, int, str, int]] = {}
        self._links_by: dict[tuple[str, int], list[int]] = {}
        self.invoice_payments: dict[int, list[int]] = {}  # invoice id -> payment ids
        # llx_multicurrency: the currencies a document may be in (module Multicurrency), each with its rates
        self.currencies = Table("multicurrency", ("code",))
        self.ensure_main_currency()

    # ------------------------------------------------------------------------------------------------------
    # shared document helpers
    # ------------------------------------------------------------------------------------------------------
    def _currency(self, body: dict[str, Any]) -> tuple[str, Decimal, int]:
        """(code, rate, fk_multicurrency) of a new document, as ``Commande::create`` / ``Facture::create`` set
        them: a currency that is not in the list (``MultiCurrency::getIdFromCode`` 0) silently becomes the main
        currency at rate 1 (the line prices, sent in the main currency, are then all there is); no rate sent
        takes the currency's latest."""
        code = str(alphanohtml(body.get("multicurrency_code")) or "")
        if not self.multicurrency_enabled or not code:
            return self.main_currency, Decimal(1), 0
        fk = self.currency_id(code)
        if not fk:
            return self.main_currency, Decimal(1), 0
        tx = dec(body.get("multicurrency_tx"), "0")
        if tx <= 0:  # empty($this->multicurrency_tx): getIdAndTxFromCode
            tx = self.currency_rate(fk) or Decimal(1)
        return code, tx, fk

    def _terms(self, doc: Obj, cond: Any, mode: Any) -> None:
        if cond is not None:
            term = PAYMENT_TERMS.get(int(cond)) if str(cond).strip().lstrip("-").isdigit() else None
            doc["cond_reglement_id"] = str(cond) if cond not in ("", None) else None
            doc["cond_reglement_code"] = term[0] if term else None
            doc["cond_reglement_doc"] = term[1] if term else None
        if mode is not None:
            pt = self.payment_type(mode)
            doc["mode_reglement_id"] = (
                str(pt["id"]) if pt else (str(mode) if mode not in ("", None) else None)
            )
            doc["mode_reglement_code"] = pt["code"] if pt else None

    def _table_of(self, element: str) -> Table:
        return self.orders if element == "commande" else self.invoices

    def _new_line(self, element: str, doc: Obj, body: dict[str, Any]) -> Obj:
        """A line in the form the parent GET shows it (ORDER_LINE / INVOICE_LINE)."""
        lid = self._line_ids[element]
        self._line_ids[element] += 1
        line = copy.deepcopy(shapes.ORDER_LINE if element == "commande" else shapes.INVOICE_LINE)
        fk_product = body.get("fk_product")
        product = None
        if fk_product not in (None, "", 0, "0"):
            pid = int(dec(fk_product))
            product = self.products.get(pid)
            if product is None:
                raise _err(
                    400,
                    "Error DB_ERROR_NO_PARENT: Cannot add or update a child row:"
                    " a foreign key constraint fails"
                    f" (fk_product {pid})",
                    f"api_{'orders' if element == 'commande' else 'invoices'}.class.php:370",
                )
        ptype = int(dec(body.get("product_type"), "0"))
        if product is not None:
            ptype = int(product["type"])
        line.update(
            id=str(lid),
            rowid=str(lid),
            ref_ext="",
            fk_product=product["id"] if product else None,
            product_type=str(ptype),
            desc=restricthtml(body.get("desc", body.get("description")) or ""),
            label=alphanohtml(body.get("label")) or None,
            array_options=self.clean_array_options(
                "commandedet" if element == "commande" else "facturedet", body.get("array_options")
            ),
            info_bits=str(int(dec(body.get("info_bits"), "0"))),
            special_code=str(int(dec(body.get("special_code"), "0"))),
            rang=str(int(dec(body.get("rang"), "0"))),
            pa_ht=s8(dec(body.get("pa_ht"), "0")),
            date_start=body.get("date_start") or "",
            date_end=body.get("date_end") or "",
            fk_unit=body.get("fk_unit"),
        )
        line["_base"] = str(body.get("price_base_type") or "HT").upper()
        line["_line_id"] = lid
        self._set_line_amounts(line, doc, body)
        return line

    def _set_line_amounts(self, line: Obj, doc: Obj, body: dict[str, Any]) -> None:
        qty = dec(body.get("qty"), str(line.get("qty") or "0"))
        pu = dec(body.get("subprice", body.get("price")), str(line.get("subprice") or "0"))
        remise = dec(body.get("remise_percent"), str(line.get("remise_percent") or "0"))
        tva = dec(body.get("tva_tx"), str(line.get("tva_tx") or "0"))
        base = str(body.get("price_base_type") or line.get("_base") or "HT").upper()
        ht, tv, ttc, pu_ht = calc_line(qty, pu, remise, tva, base)
        tx = dec(doc["multicurrency_tx"], "1")
        mht, mtv, mttc, mpu = calc_line(qty, mu(pu * tx), remise, tva, base)
        line.update(
            qty=sfloat(qty),
            subprice=s8(pu_ht),
            remise_percent=sfloat(remise),
            tva_tx=s4(tva),
            total_ht=s8(ht),
            total_tva=s8(tv),
            total_ttc=s8(ttc),
            total_localtax1="0.00000000",
            total_localtax2="0.00000000",
            multicurrency_subprice=s8(mpu),
            multicurrency_total_ht=s8(mht),
            multicurrency_total_tva=s8(mtv),
            multicurrency_total_ttc=s8(mttc),
            _base=base,
        )
        if "fk_commande" in line:
            line["price"] = sfloat(pu_ht * (1 - remise / 100))

    def _join_product(self, line: Obj) -> Obj:
        """Product columns are a JOIN at fetch time: they show the product as it is now."""
        out = {k: v for k, v in line.items() if not k.startswith("_")}
        p = self.products.get(int(line["fk_product"])) if line.get("fk_product") else None
        out["ref"] = p["ref"] if p else None
        out["product_ref"] = p["ref"] if p else None
        out["product_label"] = p["label"] if p else None
        out["libelle"] = p["label"] if p else None
        out["product_desc"] = p["description"] if p else None
        out["fk_product_type"] = p["type"] if p else None
        out["product_barcode"] = p["barcode"] if p else None
        out["description"] = out["desc"]
        if "product_tosell" in out:
            out["product_tosell"] = p["status"] if p else None
            out["product_tobuy"] = p["status_buy"] if p else None
            out["product_tobatch"] = p["status_batch"] if p else None
            out["weight"] = p["weight"] if p else None
        return out

    def _recompute(self, doc: Obj) -> None:
        tot = {k: Decimal(0) for k in ("ht", "tva", "ttc", "mht", "mtva", "mttc")}
        for ln in doc["lines"]:
            tot["ht"] += dec(ln["total_ht"])
            tot["tva"] += dec(ln["total_tva"])
            tot["ttc"] += dec(ln["total_ttc"])
            tot["mht"] += dec(ln["multicurrency_total_ht"])
            tot["mtva"] += dec(ln["multicurrency_total_tva"])
            tot["mttc"] += dec(ln["multicurrency_total_ttc"])
        doc.update(
            total_ht=s8(tot["ht"]),
            total_tva=s8(tot["tva"]),
            total_ttc=s8(tot["ttc"]),
            total_localtax1="0.00000000",
            total_localtax2="0.00000000",
            multicurrency_total_ht=s8(tot["mht"]),
            multicurrency_total_tva=s8(tot["mtva"]),
            multicurrency_total_ttc=s8(tot["mttc"]),
        )

    def _payment_url(self, source: str, ref: str) -> str:
        return f"{self.public_url}/public/payment/newpayment.php?source={source}&ref={quote(ref, safe='')}"

    def linked_ids(self, element: str, oid: int) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for lid in self._links_by.get((element, oid), []):
            st, sid, dt, did = self.links[lid]
            if st == element and sid == oid:
                out.setdefault(dt, {})[str(lid)] = str(did)
            elif dt == element and did == oid:
                out.setdefault(st, {})[str(lid)] = str(sid)
        return out

    def _link(self, st: str, sid: int, dt: str, did: int) -> int:
        lid = self.next_counter("element_element")
        self.links[lid] = (st, sid, dt, did)
        self._links_by.setdefault((st, sid), []).append(lid)
        self._links_by.setdefault((dt, did), []).append(lid)
        return lid

    def _unlink_all(self, element: str, oid: int) -> None:
        for lid in self._links_by.pop((element, oid), []):
            st, sid, dt, did = self.links.pop(lid)
            other = (dt, did) if (st, sid) == (element, oid) else (st, sid)
            if lid in self._links_by.get(other, []):
                self._links_by[other].remove(lid)

    def _add_lines(self, element: str, doc: Obj, lines: Any) -> None:
        if not isinstance(lines, list):
            return
        for body in lines:
            if isinstance(body, dict):
                line = self._new_line(element, doc, body)
                line["fk_commande" if element == "commande" else "fk_facture"] = doc["id"]
                if element == "commande":
                    line["commande_id"] = doc["id"]
                doc["lines"].append(line)
                (self.order_lines if element == "commande" else self.invoice_lines)[line["_line_id"]] = int(
                    doc["id"]
                )

    # ------------------------------------------------------------------------------------------------------
    # orders
    # ------------------------------------------------------------------------------------------------------
    def create_order(self, body: dict[str, Any]) -> int:
        for f in ("socid", "date"):
            if body.get(f) is None:
                raise _err(400, f"{f} field missing", "api_orders.class.php:1117")
        socid = int(dec(body["socid"]))
        if socid not in self.thirdparties:
            raise _err(
                500, "Error creating order", "api_orders.class.php:264", extra="ErrorThirdpartyNotFound"
            )
        oid = self.orders.new_id()
        now = self.now()
        code, tx, fk_currency = self._currency(body)
        date = day_start(as_ts(body["date"]) or now)
        o = copy.deepcopy(shapes.ORDER)
        o.update(
            id=str(oid),
            ref=f"(PROV{oid})",
            ref_ext=alphanohtml(body.get("ref_ext")) or None,
            statut="0",
            status="0",
            mode_reglement_id=None,
            cond_reglement_id=None,
            cond_reglement_code=None,
            cond_reglement_doc=None,
            mode_reglement_code=None,
            fk_multicurrency=str(fk_currency),
            multicurrency_code=code,
            multicurrency_tx=s8(tx),
            note_public=restricthtml(body.get("note_public")) or "",
            note_private=restricthtml(body.get("note_private")) or "",
            lines=[],
            date_creation=now,
            date_validation="",
            date_modification=now,
            user_modification_id=None,
            user_validation_id=None,
            socid=str(socid),
            ref_client=alphanohtml(body.get("ref_client")) or None,
            ref_customer=alphanohtml(body.get("ref_client")) or None,
            billed="0",
            date=date,
            date_commande=date,
            delivery_date="",
            array_options=self.clean_array_options("commande", body.get("array_options")),
            online_payment_url=self._payment_url("order", f"(PROV{oid})"),
        )
        self._terms(o, body.get("cond_reglement_id"), body.get("mode_reglement_id"))
        self.orders.add(oid, o)
        self._add_lines("commande", o, body.get("lines"))
        self._recompute(o)
        return oid

    def order(self, oid: int, *, source: str = "api_orders.class.php:127") -> Obj:
        o = self.orders.get(oid)
        if o is None:
            raise _err(404, "Order not found", source)
        return o

    def order_out(self, oid: int, variant: str = "get") -> Obj:
        o = self.order(oid)
        out = {k: v for k, v in o.items() if not k.startswith("_")}
        out["lines"] = [self._join_product(ln) for ln in o["lines"]]
        out["online_payment_url"] = self._payment_url("order", str(o["ref"]))
        linked: Any = self.linked_ids("commande", oid) or []
        if variant == "get":
            out["contacts_ids"] = sorted({str(c) for c, _ in o.get("_contacts", [])})
            out["linkedObjectsIds"] = linked
        elif variant == "list":
            out["contacts_ids"] = []
            out["linkedObjectsIds"] = None
        else:  # update / validate / close ...: the object in memory, not fetched again
            out["contacts_ids"] = [] if variant == "update" else None
            out["linkedObjectsIds"] = linked
            out.pop("actiontypecode", None)
            out["trackid"] = f"ord{oid}"
        return out

    def order_lines_out(self, oid: int) -> list[Obj]:
        o = self.order(oid, source="api_orders.class.php:290")
        out = []
        for ln in o["lines"]:
            joined = self._join_product(ln)
            row = copy.deepcopy(shapes.ORDER_LINE_STANDALONE)
            for k in row:
                if k in joined:
                    row[k] = joined[k]
            row["multicurrency_code"] = o["multicurrency_code"]
            out.append(row)
        return out

    def update_order(self, oid: int, body: dict[str, Any]) -> Obj:
        o = self.order(oid, source="api_orders.class.php:575")
        fields: dict[str, Any] = {"user_modification_id": "1", "date_modification": self.now()}
        for k, v in body.items():
            if k in ("note_public", "note_private"):
                fields[k] = restricthtml(v)
            elif k in ("ref_client", "ref_customer"):
                fields["ref_client"] = fields["ref_customer"] = alphanohtml(v)
            elif k == "ref_ext":
                fields[k] = alphanohtml(v)
            elif k in ("date", "date_commande"):
                ts = as_ts(v)
                if ts is not None:
                    fields["date"] = fields["date_commande"] = day_start(ts)
            elif k == "delivery_date":
                fields[k] = as_ts(v) or ""
            elif k == "array_options":
                opts = dict(o.get("array_options") or {})
                opts.update(self.clean_array_options("commande", v))
                fields[k] = opts
            elif k == "statut":
                # Commande::update writes fk_statut=$this->statut as given, without a trigger: {"statut": -1}
                # is how a client cancels an order in 20.0.2 (no cancel route). "status" is not written
                fields["statut"] = fields["status"] = str(int(dec(alphanohtml(v), "0")))
        self.orders.update_obj(oid, **fields)
        self._terms(o, body.get("cond_reglement_id"), body.get("mode_reglement_id"))
        return self.order_out(oid, "update")

    def add_order_line(self, oid: int, body: dict[str, Any]) -> int:
        o = self.order(oid, source="api_orders.class.php:346")
        if int(o["status"]) != ORDER_DRAFT:
            raise _err(400, "Order status must be draft to allow update", "api_orders.class.php:380")
        line = self._new_line("commande", o, body)
        line["fk_commande"] = line["commande_id"] = o["id"]
        o["lines"].append(line)
        self.order_lines[line["_line_id"]] = oid
        self._recompute(o)
        return int(line["_line_id"])

    def _find_line(self, doc: Obj, lineid: int) -> Obj | None:
        return next((ln for ln in doc["lines"] if ln["_line_id"] == lineid), None)

    def update_order_line(self, oid: int, lineid: int, body: dict[str, Any]) -> Obj:
        o = self.order(oid, source="api_orders.class.php:420")
        line = self._find_line(o, lineid)
        if line is None:
            raise _err(404, "Line not found", "api_orders.class.php:430")
        if int(o["status"]) != ORDER_DRAFT:
            raise _err(304, "", "api_orders.class.php:440")
        if "desc" in body or "description" in body:
            line["desc"] = restricthtml(body.get("desc", body.get("description")))
        self._set_line_amounts(line, o, body)
        self._recompute(o)
        return self._join_product(line)

    def delete_order_line(self, oid: int, lineid: int) -> None:
        """Commande::deleteLine: a document not a draft -> ErrorDeleteLineNotAllowedByObjectStatus; a line that
        is not on it (another order's, or deleted already: OrderLine::fetch finds nothing) ->
        ErrorLineIDDoesNotMatchWithObjectID; both 405 with that word as the message (api_orders.class.php:492)."""
        o = self.order(oid, source="api_orders.class.php:481")
        if int(o["status"]) != ORDER_DRAFT:
            raise _err(405, "ErrorDeleteLineNotAllowedByObjectStatus", "api_orders.class.php:492")
        line = self._find_line(o, lineid)
        if line is None:
            raise _err(405, "ErrorLineIDDoesNotMatchWithObjectID", "api_orders.class.php:492")
        o["lines"].remove(line)
        self.order_lines.pop(lineid, None)
        self._recompute(o)

    def delete_order(self, oid: int) -> None:
        o = self.order(oid, source="api_orders.class.php:630")
        for ln in o["lines"]:
            self.order_lines.pop(ln["_line_id"], None)
        self._unlink_all("commande", oid)
        self.orders.remove(oid)

    def link_contact(self, element: str, doc_id: int, contact_id: int, type_code: str) -> Obj:
        """``POST /{orders,invoices}/{id}/contact/{contactid}/{type}`` (``add_contact(..., 'external')``):
        BILLING, SHIPPING or CUSTOMER; linking the same contact with the same role again does nothing (304)."""
        doc = self.order(doc_id) if element == "commande" else self.invoice(doc_id)
        api = "api_orders" if element == "commande" else "api_invoices"
        if contact_id not in self.contacts:
            raise _err(404, "Contact not found", f"{api}.class.php:690")
        if type_code not in ("BILLING", "SHIPPING", "CUSTOMER"):
            raise _err(500, "Error when added the contact", f"{api}.class.php:700")
        links: list[tuple[int, str]] = doc.setdefault("_contacts", [])
        if (contact_id, type_code) in links:
            raise _err(304, "", f"{api}.class.php:705")
        links.append((contact_id, type_code))
        return success_body(
            "Contact linked to the order" if element == "commande" else "Contact linked to the invoice"
        )

    def document_contacts(self, element: str, doc_id: int) -> list[tuple[int, str]]:
        """(contact id, role) links of an order (``commande``) or invoice (``facture``)."""
        doc = self.order(doc_id) if element == "commande" else self.invoice(doc_id)
        return list(doc.get("_contacts", []))

    def next_order_ref(self, oid: int) -> str:
        o = self.order(oid)
        return f"CO{yymm(o['date'])}-{self.counters.get('CO', 0) + 1:04d}"

    def validate_order(self, oid: int, idwarehouse: int = 0) -> Obj:
        o = self.order(oid, source="api_orders.class.php:710")
        if int(o["status"]) != ORDER_DRAFT:
            raise _err(
                304, "Error nothing done. May be object is already validated", "api_orders.class.php:747"
            )
        if str(o["ref"]).startswith("(PROV") or not o["ref"]:
            ref = self.next_order_ref(oid)
            self.next_counter("CO")
        else:
            ref = str(o["ref"])  # set back to draft and validated again: Commande::validate keeps its number
        now = self.now()
        self.orders.update_obj(
            oid,
            ref=ref,
            statut="1",
            status="1",
            date_validation=now,
            user_validation_id="1",
            user_modification_id="1",
            date_modification=now,
        )
        if idwarehouse > 0:
            if idwarehouse not in self.warehouses:
                raise _err(
                    500, "Error when validating Order: ErrorWarehouseNotFound", "api_orders.class.php:754"
                )
            for ln in o["lines"]:
                if ln.get("fk_product") and ln["product_type"] == "0":
                    self.move_stock(
                        int(ln["fk_product"]),
                        idwarehouse,
                        -dec(ln["qty"]),
                        label=f"Order {ref} validated",
                        price=dec(ln["subprice"]),
                        mtype=2,
                        origin=("commande", oid),
                    )
        return self.order_out(oid, "validate")

    def set_order_status(self, oid: int, status: int) -> Obj:
        """Any status (e.g. 2 "shipment in process", -1 cancelled): what the GUI or a shipment would do."""
        self.order(oid)
        return self.orders.update_obj(
            oid, statut=str(status), status=str(status), date_modification=self.now()
        )

    def close_order(self, oid: int) -> Obj:
        o = self.order(oid, source="api_orders.class.php:850")
        if int(o["status"]) == ORDER_CLOSED:
            raise _err(304, "Error nothing done. May be object is already closed", "api_orders.class.php:870")
        now = self.now()
        self.orders.update_obj(oid, statut="3", status="3", date_cloture=now, user_closing_id="1")
        return self.order_out(oid, "validate")

    def reopen_order(self, oid: int) -> int:
        o = self.order(oid, source="api_orders.class.php:800")
        if int(o["status"]) not in (ORDER_CLOSED, ORDER_CANCELED):
            raise _err(304, "", "api_orders.class.php:810")
        self.orders.update_obj(oid, statut="1", status="1", billed="0")
        return 1

    def set_order_invoiced(self, oid: int) -> Obj:
        self.order(oid, source="api_orders.class.php:830")
        self.orders.update_obj(oid, billed="1")
        return self.order_out(oid, "validate")

    def order_to_draft(self, oid: int, idwarehouse: int = -1) -> Obj:
        o = self.order(oid, source="api_orders.class.php:900")
        if int(o["status"]) == ORDER_DRAFT:
            raise _err(304, "Nothing done. May be object is already closed", "api_orders.class.php:910")
        self.orders.update_obj(oid, statut="0", status="0")
        return self.order_out(oid, "validate")

    # ------------------------------------------------------------------------------------------------------
    # invoices
    # ------------------------------------------------------------------------------------------------------
    def create_invoice(self, body: dict[str, Any]) -> int:
        if body.get("socid") is None:
            raise _err(400, "socid field missing", "api_invoices.class.php:1940")
        socid = int(dec(body["socid"]))
        if socid not in self.thirdparties:
            raise _err(
                500, "Error creating invoice", "api_invoices.class.php:330", extra="ErrorThirdpartyNotFound"
            )
        itype = int(dec(body.get("type"), "0"))
        source = body.get("fk_facture_source")
        if source not in (None, "", 0, "0") and int(dec(source)) not in self.invoices:
            raise _err(
                500,
                "Error creating invoice",
                "api_invoices.class.php:330",
                extra="ErrorInvoiceSourceNotFound",
            )
        iid = self.invoices.new_id()
        now = self.now()
        code, tx, fk_currency = self._currency(body)
        date = day_start(as_ts(body.get("date")) or now)
        inv = copy.deepcopy(shapes.INVOICE)
        inv.update(
            id=str(iid),
            ref=f"(PROV{iid})",
            ref_ext=alphanohtml(body.get("ref_ext")) or None,
            statut="0",
            status="0",
            mode_reglement_id=None,
            cond_reglement_id=None,
            cond_reglement_code=None,
            cond_reglement_doc=None,
            mode_reglement_code=None,
            fk_multicurrency=str(fk_currency),
            multicurrency_code=code,
            multicurrency_tx=s8(tx),
            note_public=restricthtml(body.get("note_public")) or None,
            note_private=restricthtml(body.get("note_private")) or None,
            lines=[],
            date_creation=now,
            date_validation="",
            date_modification=now,
            datem=now,
            user_validation_id=None,
            fk_user_valid=None,
            type=str(itype),
            socid=str(socid),
            paye="0",
            date=date,
            date_lim_reglement=date,
            sumpayed=None,
            ref_client=alphanohtml(body.get("ref_client")) or None,
            ref_customer=alphanohtml(body.get("ref_client")) or None,
            fk_facture_source=None if source in (None, "", 0, "0") else str(int(dec(source))),
            array_options=self.clean_array_options("facture", body.get("array_options")),
            last_main_doc=None,
        )
        self._terms(inv, body.get("cond_reglement_id"), body.get("mode_reglement_id"))
        self._due_date(inv)
        self.invoices.add(iid, inv)
        self._link_objects(iid, body.get("linked_objects"))
        self._add_lines("facture", inv, body.get("lines"))
        self._recompute(inv)
        return iid

    def _link_objects(self, iid: int, linked: Any) -> None:
        """``Facture::create``: each ``linked_objects`` entry (``{"commande": 12}`` or ``{"commande": [12, 13]}``)
        becomes an element_element row from that object to the invoice (``add_object_linked``, no check that the
        object exists), so both ``linkedObjectsIds`` show it."""
        if not isinstance(linked, dict):
            return
        for origin, ids in linked.items():
            for oid in ids if isinstance(ids, list) else [ids]:
                if str(oid).strip().isdigit() and int(oid) > 0:
                    self._link(str(alphanohtml(origin)), int(oid), "facture", iid)

    def _due_date(self, inv: Obj) -> None:
        cond = inv.get("cond_reglement_id")
        term = PAYMENT_TERMS.get(int(cond)) if cond and str(cond).isdigit() else None
        inv["date_lim_reglement"] = int(inv["date"]) + (term[2] * 86400 if term else 0)

    def invoice(self, iid: int, *, source: str = "api_invoices.class.php:139") -> Obj:
        inv = self.invoices.get(iid)
        if inv is None:
            raise _err(404, "Invoice not found", source)
        return inv

    # ------------------------------------------------------------------------------------------------------
    # currencies (llx_multicurrency, llx_multicurrency_rate)
    # ------------------------------------------------------------------------------------------------------
    def ensure_main_currency(self) -> None:
        """The main currency is in the list, as the module's activation puts it there (the live server lists
        ``EUR`` "Euros (€)" at rate 1); a seeded row of another main currency goes."""
        for cid in [i for i, c in self.currencies.items() if c.get("_seeded")]:
            if str(self.currencies[cid]["code"]) != self.main_currency:
                self.currencies.remove(cid)
        if not self.currency_id(self.main_currency):
            name = "Euros (€)" if self.main_currency == "EUR" else self.main_currency
            cid = self.add_currency(self.main_currency, name, Decimal(1))
            self.currencies[cid]["_seeded"] = True

    def add_currency(self, code: str, name: str, rate: Decimal | None = None) -> int:
        """``MultiCurrency::create`` (+ ``addRate`` when a rate > 0 is given): a code already in the list
        (compared as the database collation does) is refused with ``multicurrency_code_already_added``."""
        if self.currencies.ids_by("code", code):
            raise _err(
                500,
                "Error creating currency",
                "api_multicurrencies.class.php:229",
                extra="",
                more=("multicurrency_code_already_added",),
            )
        cid = self.currencies.new_id()
        self.currencies.add(
            cid,
            {
                "id": str(cid),
                "code": code,
                "name": name,
                "entity": "1",
                "date_create": self.now(),
                "fk_user": "1",
                "_rates": [],
            },
        )
        if rate is not None and rate > 0:
            self.add_currency_rate(cid, rate)
        return cid

    def add_currency_rate(self, cid: int, rate: Decimal) -> Obj:
        rates: list[Obj] = self.currencies[cid]["_rates"]
        row = {
            "id": str(self.next_counter("multicurrency_rate")),
            "rate": sfloat(rate),
            "date_sync": self.now(),
        }
        rates.append(row)
        return row

    def currency_id(self, code: str) -> int:
        """``MultiCurrency::getIdFromCode``: 0 for a code that is not in the list."""
        ids = self.currencies.ids_by("code", code)
        return ids[0] if ids else 0

    def _latest_rate(self, cid: int) -> Obj | None:
        """``getRate``: the rate with the highest ``date_sync`` (the last added among equals)."""
        rates: list[Obj] = self.currencies[cid]["_rates"] if cid in self.currencies else []
        return max(reversed(rates), key=lambda r: r["date_sync"]) if rates else None

    def currency_rate(self, cid: int) -> Decimal | None:
        latest = self._latest_rate(cid)
        return dec(latest["rate"]) if latest else None

    def currency_out(self, cid: int) -> Obj:
        """A currency as the API answers it (``_cleanObjectDatas`` keeps id, name, code and the latest rate's
        id, rate and date_sync: live 20.0.2)."""
        c = self.currencies.get(cid)
        if c is None:
            raise _err(404, "Currency not found", "api_multicurrencies.class.php:123")
        latest = self._latest_rate(cid)
        return {"id": c["id"], "name": c["name"], "code": c["code"], "rate": dict(latest) if latest else None}

    def multicurrencies(self) -> list[Obj]:
        """``GET /multicurrencies`` (module Multicurrency on): every currency of the list, by id."""
        return [self.currency_out(cid) for cid in sorted(self.currencies)]

    def _mc(self, iid: int) -> bool:
        inv = self.invoice(iid)
        return self.multicurrency_enabled and str(inv["multicurrency_code"]) != self.main_currency

    def paid_amount_mc(self, iid: int) -> Decimal:
        """What was paid on an invoice in its own currency (payments made in the main currency converted)."""
        tx = dec(self.invoice(iid)["multicurrency_tx"], "1")
        total = Decimal(0)
        for pid in self.invoice_payments.get(iid, []):
            p = self.payments[pid]
            mc = p.get("_mc_amounts", {}).get(iid)
            total += mc if mc is not None else mt(p["_amounts"].get(iid, Decimal(0)) * tx)
        return total

    def remain_to_pay_mc(self, iid: int) -> Decimal:
        return mt(dec(self.invoice(iid)["multicurrency_total_ttc"]) - self.paid_amount_mc(iid))

    def paid_amount(self, iid: int) -> Decimal:
        total = Decimal(0)
        for pid in self.invoice_payments.get(iid, []):
            total += self.payments[pid]["_amounts"].get(iid, Decimal(0))
        return total

    def remain_to_pay(self, iid: int) -> Decimal:
        return mt(dec(self.invoice(iid)["total_ttc"]) - self.paid_amount(iid))

    def invoice_out(self, iid: int, variant: str = "get") -> Obj:
        inv = self.invoice(iid)
        out = {k: v for k, v in inv.items() if not k.startswith("_")}
        out["lines"] = [self._join_product(ln) for ln in inv["lines"]]
        paid = self.paid_amount(iid)
        out["sumpayed"] = s8(paid) if self.invoice_payments.get(iid) else None
        out["remaintopay"] = price2num(dec(inv["total_ttc"]) - paid)
        out["online_payment_url"] = self._payment_url("invoice", str(inv["ref"]))
        linked: Any = self.linked_ids("facture", iid) or []
        if variant == "get":
            out["contacts_ids"] = sorted({str(c) for c, _ in inv.get("_contacts", [])})
            out["linkedObjectsIds"] = linked
        elif variant == "list":
            out["contacts_ids"] = []
            out["linkedObjectsIds"] = None
        else:
            out["contacts_ids"] = [] if variant == "update" else None
            out["linkedObjectsIds"] = linked if variant == "update" else None
            if variant != "update":
                out["remaintopay"] = None
            out.pop("actiontypecode", None)
            out["trackid"] = f"inv{iid}"
        return out

    def invoice_lines_out(self, iid: int) -> list[Obj]:
        inv = self.invoice(iid, source="api_invoices.class.php:420")
        return [self._join_product(ln) for ln in inv["lines"]]

    def update_invoice(self, iid: int, body: dict[str, Any]) -> Obj:
        inv = self.invoice(iid, source="api_invoices.class.php:700")
        fields: dict[str, Any] = {"date_modification": self.now(), "datem": self.now()}
        for k, v in body.items():
            if k in ("note_public", "note_private"):
                fields[k] = restricthtml(v)
            elif k in ("ref_client", "ref_customer"):
                fields["ref_client"] = fields["ref_customer"] = alphanohtml(v)
            elif k == "ref_ext":
                fields[k] = alphanohtml(v)
            elif k == "date":
                ts = as_ts(v)
                if ts is not None:
                    fields["date"] = day_start(ts)
            elif k == "array_options":
                opts = dict(inv.get("array_options") or {})
                opts.update(self.clean_array_options("facture", v))
                fields[k] = opts
        self.invoices.update_obj(iid, **fields)
        self._terms(inv, body.get("cond_reglement_id"), body.get("mode_reglement_id"))
        self._due_date(inv)
        return self.invoice_out(iid, "update")

    def add_invoice_line(self, iid: int, body: dict[str, Any]) -> int:
        inv = self.invoice(iid, source="api_invoices.class.php:560")
        if int(inv["status"]) != INVOICE_DRAFT:
            raise _err(400, "Invoice status must be draft to allow update", "api_invoices.class.php:600")
        line = self._new_line("facture", inv, body)
        line["fk_facture"] = inv["id"]
        inv["lines"].append(line)
        self.invoice_lines[line["_line_id"]] = iid
        self._recompute(inv)
        return int(line["_line_id"])

    def update_invoice_line(self, iid: int, lineid: int, body: dict[str, Any]) -> Obj:
        inv = self.invoice(iid, source="api_invoices.class.php:460")
        line = self._find_line(inv, lineid)
        if line is None:
            raise _err(404, "Line not found", "api_invoices.class.php:470")
        if int(inv["status"]) != INVOICE_DRAFT:
            raise _err(304, "", "api_invoices.class.php:480")
        if "desc" in body or "description" in body:
            line["desc"] = restricthtml(body.get("desc", body.get("description")))
        self._set_line_amounts(line, inv, body)
        self._recompute(inv)
        return self._join_product(line)

    def delete_invoice_line(self, iid: int, lineid: int) -> None:
        """Facture::deleteLine: a document not a draft -> 405 ErrorDeleteLineNotAllowedByObjectStatus; another
        invoice's line -> 405 ErrorLineIDDoesNotMatchWithObjectID; a line that does not exist (deleted already):
        FactureLigne::fetch answers 0, deleteLine prints dol_print_error()'s page ("InvoiceLine with id N not
        found") and returns -1 with an empty error, so the answer is that page (php-fpm's output buffer holds it)
        followed by Restler's 405 JSON without a reason (api_invoices.class.php:639)."""
        inv = self.invoice(iid, source="api_invoices.class.php:632")
        if int(inv["status"]) != INVOICE_DRAFT:
            raise _err(405, "ErrorDeleteLineNotAllowedByObjectStatus", "api_invoices.class.php:639")
        line = self._find_line(inv, lineid)
        if line is None and lineid in self.invoice_lines:
            raise _err(405, "ErrorLineIDDoesNotMatchWithObjectID", "api_invoices.class.php:639")
        if line is None:
            sql = (
                "SELECT fd.rowid, fd.fk_facture, fd.fk_parent_line, fd.fk_product, fd.product_type, fd.label as "
                "custom_label, fd.description, fd.price, fd.qty, fd.vat_src_code, fd.tva_tx, fd.localtax1_tx, "
                "fd.localtax2_tx, fd.localtax1_type, fd.localtax2_type, fd.remise, fd.remise_percent, "
                "fd.fk_remise_except, fd.subprice, fd.ref_ext, fd.date_start as date_start, fd.date_end as "
                "date_end, fd.fk_product_fournisseur_price as fk_fournprice, fd.buy_price_ht as pa_ht, "
                "fd.info_bits, fd.special_code, fd.total_ht, fd.total_tva, fd.total_ttc, fd.total_localtax1, "
                "fd.total_localtax2, fd.rang, fd.fk_code_ventilation, fd.fk_unit, fd.fk_user_author, "
                "fd.fk_user_modif, fd.situation_percent, fd.fk_prev_id, fd.multicurrency_subprice, "
                "fd.multicurrency_total_ht, fd.multicurrency_total_tva, fd.multicurrency_total_ttc, p.ref as "
                "product_ref, p.label as product_label, p.description as product_desc FROM llx_facturedet as "
                f"fd LEFT JOIN llx_product as p ON fd.fk_product = p.rowid WHERE fd.rowid = {lineid}"
            )
            page = database.dol_print_error_page(
                f"/api/index.php/invoices/{iid}/lines/{lineid}",
                "",
                messages=(f"InvoiceLine with id {lineid} not found sql={sql}",),
                translated=True,
                login="admin",
                modules=("agenda", "api", "banque", "categorie", "commande", "facture", "product", "societe"),
            )
            error = _err(405, "", "api_invoices.class.php:639")
            error.prefix = page
            raise error
        inv["lines"].remove(line)
        self.invoice_lines.pop(lineid, None)
        self._recompute(inv)

    def delete_invoice(self, iid: int) -> None:
        inv = self.invoice(iid, source="api_invoices.class.php:790")
        if int(inv["status"]) != INVOICE_DRAFT or self.paid_amount(iid):
            raise _err(403, "Invoice not erasable", "api_invoices.class.php:800")
        for ln in inv["lines"]:
            self.invoice_lines.pop(ln["_line_id"], None)
        self._unlink_all("facture", iid)
        self.invoices.remove(iid)

    def next_invoice_ref(self, iid: int) -> str:
        inv = self.invoice(iid)
        prefix = INVOICE_PREFIX.get(int(inv["type"]), "FA")
        return f"{prefix}{yymm(inv['date'])}-{self.counters.get(prefix, 0) + 1:04d}"

    def validate_invoice(self, iid: int, idwarehouse: int = 0) -> Obj:
        inv = self.invoice(iid, source="api_invoices.class.php:1120")
        if int(inv["status"]) != INVOICE_DRAFT:
            raise _err(
                304, "Error nothing done. May be object is already validated", "api_invoices.class.php:1140"
            )
        if not inv["lines"]:
            raise _err(
                500,
                "Error when validating Invoice: ErrorObjectMustHaveLinesToBeValidated",
                "api_invoices.class.php:1143",
            )
        if str(inv["ref"]).startswith("(PROV") or not inv["ref"]:
            ref = self.next_invoice_ref(iid)
            self.next_counter(INVOICE_PREFIX.get(int(inv["type"]), "FA"))
        else:
            ref = str(inv["ref"])  # Facture::validate keeps a number already given
        now = self.now()
        self.invoices.update_obj(
            iid,
            ref=ref,
            statut="1",
            status="1",
            date_validation=day_start(now),
            user_validation_id="1",
            fk_user_valid="1",
        )
        if idwarehouse > 0:
            for ln in inv["lines"]:
                if ln.get("fk_product") and ln["product_type"] == "0":
                    sign = Decimal(1) if int(inv["type"]) == 2 else Decimal(-1)
                    self.move_stock(
                        int(ln["fk_product"]),
                        idwarehouse,
                        sign * dec(ln["qty"]),
                        label=f"Invoice {ref} validated",
                        price=dec(ln["subprice"]),
                        mtype=3 if sign > 0 else 2,
                        origin=("facture", iid),
                    )
        return self.invoice_out(iid, "validate")

    def invoice_to_draft(self, iid: int) -> Obj:
        inv = self.invoice(iid, source="api_invoices.class.php:1060")
        if int(inv["status"]) == INVOICE_DRAFT:
            raise _err(304, "Nothing done. May be object is already draft", "api_invoices.class.php:1080")
        if self.paid_amount(iid):
            raise _err(
                500, "Error when closing Invoice: ErrorInvoiceHasPayments", "api_invoices.class.php:1085"
            )
        self.invoices.update_obj(iid, statut="0", status="0", paye="0")
        return self.invoice_out(iid, "validate")

    def invoice_set_paid(self, iid: int, close_code: str = "", close_note: str = "") -> Obj:
        inv = self.invoice(iid, source="api_invoices.class.php:1190")
        if inv["paye"] == "1":
            raise _err(
                304, "Error nothing done. May be object is already validated", "api_invoices.class.php:1200"
            )
        self.invoices.update_obj(
            iid,
            statut="2",
            status="2",
            paye="1",
            close_code=close_code or None,
            close_note=close_note or None,
        )
        return self.invoice_out(iid, "validate")

    def invoice_set_unpaid(self, iid: int) -> Obj:
        inv = self.invoice(iid, source="api_invoices.class.php:1240")
        if inv["paye"] != "1" and int(inv["status"]) != INVOICE_PAID:
            raise _err(
                304, "Error nothing done. May be object is already validated", "api_invoices.class.php:1250"
            )
        self.invoices.update_obj(iid, statut="1", status="1", paye="0", close_code=None, close_note=None)
        return self.invoice_out(iid, "validate")

    def create_invoice_from_order(self, oid: int) -> Obj:
        o = self.order(oid, source="api_invoices.class.php:1320")
        now = self.now()
        body = {
            "socid": o["socid"],
            "type": 0,
            "date": now,
            "ref_client": o["ref_client"],
            "note_public": o["note_public"],
            "note_private": o["note_private"],
            "cond_reglement_id": o["cond_reglement_id"],
            "mode_reglement_id": o["mode_reglement_id"],
            "multicurrency_code": o["multicurrency_code"],
            "multicurrency_tx": o["multicurrency_tx"],
        }
        iid = self.create_invoice(body)
        inv = self.invoices[iid]
        inv["multicurrency_code"], inv["multicurrency_tx"] = o["multicurrency_code"], o["multicurrency_tx"]
        for src in o["lines"]:
            line = self._new_line(
                "facture",
                inv,
                {
                    "fk_product": src["fk_product"],
                    "product_type": src["product_type"],
                    "desc": src["desc"],
                    "label": src["label"],
                    "qty": src["qty"],
                    "subprice": src["subprice"],
                    "remise_percent": src["remise_percent"],
                    "tva_tx": src["tva_tx"],
                    "info_bits": src["info_bits"],
                    "special_code": src["special_code"],
                    "rang": src["rang"],
                    "pa_ht": src["pa_ht"],
                },
            )
            line["fk_facture"] = inv["id"]
            inv["lines"].append(line)
            self.invoice_lines[line["_line_id"]] = iid
        self._recompute(inv)
        lid = self._link("commande", oid, "facture", iid)
        return self._from_order_out(iid, oid, lid, now)

    def _from_order_out(self, iid: int, oid: int, lid: int, now: int) -> Obj:
        """The in-memory Facture after createFromOrder(): PHP numbers, not yet fetched (captured shape)."""
        inv = self.invoices[iid]
        out = copy.deepcopy(shapes.INVOICE_FROM_ORDER)
        out.update(
            id=iid,
            linkedObjectsIds={"commande": {str(lid): str(oid)}},
            origin_id=str(oid),
            ref=inv["ref"],
            statut=0,
            status=0,
            fk_multicurrency=0,
            multicurrency_code=inv["multicurrency_code"],
            multicurrency_tx=num(dec(inv["multicurrency_tx"])),
            multicurrency_total_ht=num(dec(inv["multicurrency_total_ht"])),
            multicurrency_total_tva=num(dec(inv["multicurrency_total_tva"])),
            multicurrency_total_ttc=num(dec(inv["multicurrency_total_ttc"])),
            note_public=inv["note_public"],
            note_private=inv["note_private"],
            total_ht=num(dec(inv["total_ht"])),
            total_tva=num(dec(inv["total_tva"])),
            total_localtax1=0,
            total_localtax2=0,
            total_ttc=num(dec(inv["total_ttc"])),
            socid=inv["socid"],
            date=now,
            date_lim_reglement=now + (int(inv["date_lim_reglement"]) - int(inv["date"])),
            ref_client=inv["ref_client"],
            mode_reglement_id=inv["mode_reglement_id"],
            cond_reglement_id=inv["cond_reglement_id"],
        )
        lines = []
        for ln in inv["lines"]:
            row = copy.deepcopy(shapes.INVOICE_FROM_ORDER_LINE)
            for k in (
                "multicurrency_total_ht",
                "multicurrency_total_tva",
                "multicurrency_total_ttc",
                "total_ht",
                "total_tva",
                "total_ttc",
                "product_type",
                "fk_product",
                "desc",
                "qty",
                "remise_percent",
                "info_bits",
                "special_code",
                "subprice",
                "tva_tx",
                "multicurrency_subprice",
                "pa_ht",
                "rang",
            ):
                row[k] = ln[k]
            p = self.products.get(int(ln["fk_product"])) if ln.get("fk_product") else None
            row["libelle"] = p["label"] if p else None
            row["fk_facture"] = iid
            lines.append(row)
        out["lines"] = lines
        if inv["lines"]:
            last = inv["lines"][-1]
            lo = copy.deepcopy(shapes.INVOICE_FROM_ORDER_LINEOBJ)
            lo["db"]["db"] = PhpObject()
            lo["db"]["lastquery"] = str(lo["db"]["lastquery"]).replace(
                "fk_commande = 3", f"fk_commande = {oid}"
            )
            lo.update(
                id=last["_line_id"],
                rowid=last["_line_id"],
                context={"link_origin": "commande", "link_origin_id": str(oid)},
                multicurrency_code=inv["multicurrency_code"],
                multicurrency_total_ht=sfloat(dec(last["multicurrency_total_ht"])),
                multicurrency_total_tva=sfloat(dec(last["multicurrency_total_tva"])),
                multicurrency_total_ttc=sfloat(dec(last["multicurrency_total_ttc"])),
                total_ht=sfloat(dec(last["total_ht"])),
                total_tva=sfloat(dec(last["total_tva"])),
                total_ttc=sfloat(dec(last["total_ttc"])),
                product_type=last["product_type"],
                fk_product=last["fk_product"],
                desc=last["desc"],
                qty=last["qty"],
                subprice=sfloat(dec(last["subprice"])),
                tva_tx=sfloat(dec(last["tva_tx"])),
                multicurrency_subprice=sfloat(dec(last["multicurrency_subprice"])),
                libelle=None,
                fk_facture=iid,
            )
            out["line"] = lo
        return out

    # ------------------------------------------------------------------------------------------------------
    # payments
    # ------------------------------------------------------------------------------------------------------
    def _check_payment_params(self, paymentid: Any, accountid: Any, chqemetteur: str) -> Obj:
        if accountid in (None, "", 0, "0"):
            raise _err(400, "Account ID is mandatory", "api_invoices.class.php:1480")
        if int(dec(accountid)) not in self.bank_accounts:
            raise _err(
                400, "Add payment to bank error : ErrorBankAccountNotFound", "api_invoices.class.php:1540"
            )
        pt = self.payment_type(paymentid)
        if pt is None:
            raise _err(400, "Payment ID or Payment Code is mandatory", "api_invoices.class.php:1485")
        if pt["code"] == "CHQ" and not chqemetteur:
            raise _err(400, "Emetteur is mandatory when payment code is CHQ", "api_invoices.class.php:1530")
        return pt

    def _create_payment(
        self,
        amounts: dict[int, Decimal],
        datepaye: int,
        pt: Obj,
        accountid: int,
        num_payment: str,
        comment: str,
        close_paid: bool,
        ref_ext: str = "",
        mc_amounts: dict[int, Decimal] | None = None,
    ) -> int:
        if not any(amounts.values()):
            raise _err(400, "Payment error : TotalAmountEmpty", "api_invoices.class.php:1520")
        pid = self.payments.new_id()
        ref = f"PAY{yymm(datepaye)}-{self.next_counter('PAY'):04d}"
        total = sum(amounts.values(), Decimal(0))
        bank_line = len(self.bank_lines) + 1
        self.bank_lines.append(
            {"id": bank_line, "fk_account": accountid, "amount": total, "label": "(CustomerInvoicePayment)"}
        )
        acc = self.bank_accounts[accountid]
        acc["balance"] = num(dec(acc["balance"]) + total)
        self.payments.add(
            pid,
            {
                "id": str(pid),
                "ref": ref,
                "ref_ext": ref_ext,
                "datepaye": datepaye,
                "amount": s8(total),
                "paymentid": str(pt["id"]),
                "type": pt["code"],
                "num_payment": num_payment,
                "note_private": comment,
                "fk_account": str(accountid),
                "fk_bank_line": str(bank_line),
                "invoices": {str(k): s8(v) for k, v in amounts.items()},
                "_amounts": dict(amounts),
                "_mc_amounts": dict(mc_amounts or {}),
            },
        )
        for iid in amounts:
            self.invoice_payments.setdefault(iid, []).append(pid)
            inv = self.invoices[iid]
            inv["last_main_doc"] = f"facture/{inv['ref']}/{inv['ref']}.pdf"
            settled = self.remain_to_pay(iid) == 0 or (self._mc(iid) and self.remain_to_pay_mc(iid) == 0)
            if close_paid and settled and int(inv["status"]) == INVOICE_VALIDATED:
                self.invoices.update_obj(iid, statut="2", status="2", paye="1")
        return pid

    def add_payment(self, iid: int, body: dict[str, Any]) -> int:
        for f in ("datepaye", "paymentid", "closepaidinvoices", "accountid"):
            if body.get(f) is None:
                raise _err(400, f"`{f}` is required.", "Validator.php:436", stage="validate")
        pt = self._check_payment_params(
            body["paymentid"], body["accountid"], str(body.get("chqemetteur") or "")
        )
        self.invoice(iid, source="api_invoices.class.php:1490")
        remain = self.remain_to_pay(iid)
        amount = remain  # a credit note has a negative remain: the payment is a refund
        datepaye = as_ts(body["datepaye"]) or self.now()
        return self._create_payment(
            {iid: amount},
            datepaye,
            pt,
            int(dec(body["accountid"])),
            alphanohtml(body.get("num_payment")) or "",
            restricthtml(body.get("comment")) or "",
            str(body["closepaidinvoices"]) == "yes",
        )

    def add_payment_distributed(self, body: dict[str, Any]) -> int:
        for f in ("arrayofamounts", "datepaye", "paymentid", "closepaidinvoices", "accountid"):
            if body.get(f) is None:
                raise _err(400, f"`{f}` is required.", "Validator.php:436", stage="validate")
        pt = self._check_payment_params(
            body["paymentid"], body["accountid"], str(body.get("chqemetteur") or "")
        )
        arr = body["arrayofamounts"]
        if not isinstance(arr, dict) or not arr:
            raise _err(400, "Payment error : TotalAmountEmpty", "api_invoices.class.php:1640")
        amounts: dict[int, Decimal] = {}
        mc_amounts: dict[int, Decimal] = {}
        for key, val in arr.items():
            iid = int(dec(key))
            if iid not in self.invoices:
                raise _err(404, f"Invoice ID {iid} not found", "api_invoices.class.php:1600")
            remain = self.remain_to_pay(iid)
            raw = val.get("amount") if isinstance(val, dict) else val
            raw_mc = val.get("multicurrency_amount") if isinstance(val, dict) else None
            if raw in (None, "") and raw_mc not in (None, "") and self._mc(iid):
                # an amount in the invoice's currency: Paiement::create converts it with the invoice's rate
                remain_mc = self.remain_to_pay_mc(iid)
                mc = remain_mc if raw_mc == "remain" else mt(dec(raw_mc))
                if mc > remain_mc and not body.get("accepthigherpayment"):
                    raise _err(
                        400,
                        f"Payment amount on invoice ID {iid} ({sfloat(mc)}) is higher than remain to pay"
                        f" ({sfloat(remain_mc)})",
                        "api_invoices.class.php:1620",
                    )
                mc_amounts[iid] = mc
                tx = dec(self.invoices[iid]["multicurrency_tx"], "1")
                amounts[iid] = remain if mc == remain_mc else mt(mc / tx)
                continue
            amount = remain if raw == "remain" else mt(dec(raw))
            if amount > remain and not body.get("accepthigherpayment"):
                raise _err(
                    400,
                    f"Payment amount on invoice ID {iid} ({sfloat(amount)}) is higher than remain to pay"
                    f" ({sfloat(remain)})",
                    "api_invoices.class.php:1620",
                )
            amounts[iid] = amount
        datepaye = as_ts(body["datepaye"]) or self.now()
        return self._create_payment(
            amounts,
            datepaye,
            pt,
            int(dec(body["accountid"])),
            alphanohtml(body.get("num_payment")) or "",
            restricthtml(body.get("comment")) or "",
            str(body["closepaidinvoices"]) == "yes",
            alphanohtml(body.get("ref_ext")) or "",
            mc_amounts,
        )

    def payments_of(self, iid: int) -> list[Obj]:
        self.invoice(iid, source="api_invoices.class.php:1700")
        out = []
        for pid in self.invoice_payments.get(iid, []):
            p = self.payments[pid]
            if iid in p["_amounts"]:
                row = copy.deepcopy(shapes.INVOICE_PAYMENT)
                row.update(
                    amount=s8(p["_amounts"][iid]),
                    type=p["type"],
                    date=sql_datetime(p["datepaye"]),
                    num=p["num_payment"],
                    ref=p["ref"],
                    ref_ext=p["ref_ext"],
                    fk_bank_line=p["fk_bank_line"],
                )
                out.append(row)
        return out

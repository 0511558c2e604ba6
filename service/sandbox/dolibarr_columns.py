"""The ``sqlfilters`` columns of each list endpoint: what ``t.<column>`` and ``ef.<extrafield>`` read in a
stored object, and as which SQL type (``dolibarr_sqlfilters``) they compare."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from service.sandbox.dolibarr_sqlfilters import Columns
from service.sandbox.dolibarr_table import Obj, utc

if TYPE_CHECKING:
    from service.sandbox.dolibarr_model import DolibarrData


def _ts_getter(key: str) -> Callable[[Obj], Any]:
    def get(o: Obj) -> Any:
        v = o.get(key)
        if isinstance(v, int) and not isinstance(v, bool):
            return utc(v).replace(tzinfo=None)
        return v if v not in ("", None) else None

    return get


def _ef_columns(data: DolibarrData, elementtype: str) -> Columns:
    cols: Columns = {}
    for name, d in data.extrafields.get(elementtype, {}).items():
        ctype = "num" if d["type"] in ("int", "double", "price") else "str"
        cols["ef." + name] = ("num" if ctype == "num" else "str", _option_getter(name))
    return cols


def _option_getter(name: str) -> Callable[[Obj], Any]:
    return lambda o: (o.get("array_options") or {}).get("options_" + name)


def _key(k: str) -> Callable[[Obj], Any]:
    return lambda o: o.get(k)


def columns_for(data: DolibarrData, kind: str) -> Columns:
    common: Columns = {"t.rowid": ("int", _key("id")), "t.entity": ("int", lambda o: 1)}
    if kind == "products":
        cols: Columns = {
            "t.ref": ("str", _key("ref")),
            "t.ref_ext": ("str", _key("ref_ext")),
            "t.label": ("str", _key("label")),
            "t.description": ("str", _key("description")),
            "t.barcode": ("str", _key("barcode")),
            "t.fk_product_type": ("int", _key("type")),
            "t.tosell": ("int", _key("status")),
            "t.tobuy": ("int", _key("status_buy")),
            "t.price": ("num", _key("price")),
            "t.price_ttc": ("num", _key("price_ttc")),
            "t.tva_tx": ("num", _key("tva_tx")),
            "t.cost_price": ("num", _key("cost_price")),
            "t.pmp": ("num", _key("pmp")),
            "t.weight": ("num", _key("weight")),
            "t.datec": ("date", _ts_getter("date_creation")),
            "t.tms": ("date", _ts_getter("date_modification")),
            "t.note_public": ("str", _key("note_public")),
            "t.note": ("str", _key("note_private")),
            **_ef_columns(data, "product"),
        }
    elif kind == "thirdparties":
        cols = {
            "t.nom": ("str", _key("name")),
            "t.name_alias": ("str", _key("name_alias")),
            "t.ref_ext": ("str", _key("ref_ext")),
            "t.email": ("str", _key("email")),
            "t.phone": ("str", _key("phone")),
            "t.zip": ("str", _key("zip")),
            "t.town": ("str", _key("town")),
            "t.address": ("str", _key("address")),
            "t.fk_pays": ("int", _key("country_id")),
            "t.client": ("int", _key("client")),
            "t.fournisseur": ("int", _key("fournisseur")),
            "t.code_client": ("str", _key("code_client")),
            "t.code_fournisseur": ("str", _key("code_fournisseur")),
            "t.barcode": ("str", _key("barcode")),
            "t.status": ("int", _key("status")),
            "t.siren": ("str", _key("idprof1")),
            "t.siret": ("str", _key("idprof2")),
            "t.tva_intra": ("str", _key("tva_intra")),
            "t.datec": ("date", _ts_getter("date_creation")),
            "t.tms": ("date", _ts_getter("date_modification")),
            **_ef_columns(data, "societe"),
        }
    elif kind == "contacts":
        cols = {
            "t.lastname": ("str", _key("lastname")),
            "t.firstname": ("str", _key("firstname")),
            "t.email": ("str", _key("email")),
            "t.ref_ext": ("str", _key("ref_ext")),
            "t.fk_soc": ("int", _key("socid")),
            "t.statut": ("int", _key("statut")),
            "t.phone": ("str", _key("phone_pro")),
            "t.datec": ("date", _ts_getter("date_creation")),
        }
    elif kind in ("orders", "invoices"):
        cols = {
            "t.ref": ("str", _key("ref")),
            "t.ref_ext": ("str", _key("ref_ext")),
            "t.ref_client": ("str", _key("ref_client")),
            "t.fk_soc": ("int", _key("socid")),
            "t.fk_statut": ("int", _key("status")),
            "t.total_ht": ("num", _key("total_ht")),
            "t.total_ttc": ("num", _key("total_ttc")),
            "t.multicurrency_code": ("str", _key("multicurrency_code")),
            "t.datec": ("date", _ts_getter("date_creation")),
            "t.tms": ("date", _ts_getter("date_modification")),
            "t.date_valid": ("date", _ts_getter("date_validation")),
            "t.note_public": ("str", _key("note_public")),
            "t.note_private": ("str", _key("note_private")),
        }
        if kind == "orders":
            cols["t.date_commande"] = ("date", _ts_getter("date"))
            cols["t.facture"] = ("int", _key("billed"))
            cols.update(_ef_columns(data, "commande"))
        else:
            cols["t.datef"] = ("date", _ts_getter("date"))
            cols["t.paye"] = ("int", _key("paye"))
            cols["t.type"] = ("int", _key("type"))
            cols["t.fk_facture_source"] = ("int", _key("fk_facture_source"))
            cols.update(_ef_columns(data, "facture"))
    elif kind == "categories":
        cols = {
            "t.label": ("str", _key("label")),
            "t.type": ("int", _key("type")),
            "t.fk_parent": ("int", _key("fk_parent")),
            "t.description": ("str", _key("description")),
            "t.color": ("str", _key("color")),
            "t.ref_ext": ("str", _key("ref_ext")),
            "t.visible": ("int", _key("visible")),
        }
    elif kind == "attributes":
        cols = {
            "t.ref": ("str", _key("ref")),
            "t.ref_ext": ("str", _key("ref_ext")),
            "t.label": ("str", _key("label")),
            "t.position": ("int", _key("position")),
        }
    elif kind == "stock_movements":
        cols = {
            "t.fk_product": ("int", _key("product_id")),
            "t.fk_entrepot": ("int", _key("warehouse_id")),
            "t.value": ("num", _key("qty")),
            "t.type_mouvement": ("int", _key("type")),
            "t.label": ("str", _key("label")),
            "t.inventorycode": ("str", _key("inventorycode")),
            "t.price": ("num", _key("price")),
            "t.datem": ("date", _ts_getter("datem")),
            "t.fk_origin": ("int", _key("fk_origin")),
            "t.origintype": ("str", _key("origintype")),
        }
    elif kind == "warehouses":
        cols = {
            "t.ref": ("str", _key("ref")),
            "t.label": ("str", _key("label")),
            "t.description": ("str", _key("description")),
            "t.statut": ("int", _key("statut")),
            "t.fk_parent": ("int", _key("fk_parent")),
        }
    elif kind == "currencies":
        cols = {
            "t.code": ("str", _key("code")),
            "t.name": ("str", _key("name")),
            "t.date_create": ("date", _ts_getter("date_create")),
            "t.fk_user": ("int", _key("fk_user")),
        }
    elif kind == "bank_accounts":
        cols = {
            "t.ref": ("str", _key("ref")),
            "t.label": ("str", _key("label")),
            "t.clos": ("int", _key("clos")),
            "t.currency_code": ("str", _key("currency_code")),
        }
    else:
        cols = {}
    return {**common, **cols}

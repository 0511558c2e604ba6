"""An in-memory Dolibarr 20.0.2: the data behind the REST simulator, and the rules Dolibarr applies to it.

Objects are stored in the form ``GET`` answers them (every captured key, Dolibarr's value types: ids and
amounts as strings, ``"20.00000000"``), so tests can read them directly::

    data = app[DATA_KEY]
    [p] = data.find("products", ref_ext="ps-product-1")
    assert p["price"] == "24.00000000"
    assert len(data.find("thirdparties", ref_ext="ps-customer-7")) == 1

Tables (``dict[int, dict]``): ``thirdparties``, ``contacts``, ``products`` (products and services),
``categories``, ``attributes``, ``attribute_values``, ``combinations``, ``warehouses``, ``stock_movements``,
``orders``, ``invoices``, ``payments``, ``bank_accounts``. Lookups by ref / ref_ext / email / barcode use
indexes. Orders and invoices (``dolibarr_sales``) live in the same object through a mixin.

Modelled from the captures in ``shared/reference/dolibarr`` and, where they are silent, from the Dolibarr
sources named in ``docs/dolibarr-simulator.md``.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar

from service.sandbox import dolibarr_shapes as shapes
from service.sandbox.dolibarr_columns import columns_for
from service.sandbox.dolibarr_documents import DocumentsMixin
from service.sandbox.dolibarr_sales import SalesMixin
from service.sandbox.dolibarr_sqlfilters import Columns
from service.sandbox.dolibarr_table import (
    PAYMENT_TERMS,
    DolibarrError,
    Obj,
    Table,
    alphanohtml,
    dec,
    mt,
    mu,
    restricthtml,
    s4,
    s8,
    sfloat,
    sql_datetime,
    yymm,
)
from service.sandbox.dolibarr_text import php_trim, product_ref_on_create, product_ref_on_update

__all__ = ["PAYMENT_TERMS", "DolibarrData", "DolibarrError", "Obj"]

CATEGORY_TYPES = {"product": 0, "supplier": 1, "customer": 2, "member": 3, "contact": 4, "bank_account": 5}
CATEGORY_TYPE_NAMES = {v: k for k, v in CATEGORY_TYPES.items()}

COUNTRIES: list[tuple[int, str, str, str]] = [
    (1, "FR", "FRA", "France"),
    (2, "BE", "BEL", "Belgium"),
    (3, "IT", "ITA", "Italy"),
    (4, "ES", "ESP", "Spain"),
    (5, "DE", "DEU", "Germany"),
    (6, "CH", "CHE", "Switzerland"),
    (7, "GB", "GBR", "United Kingdom"),
    (11, "US", "USA", "United States"),
    (14, "CA", "CAN", "Canada"),
    (17, "NL", "NLD", "Netherlands"),
    (25, "PT", "PRT", "Portugal"),
    (140, "LU", "LUX", "Luxembourg"),
]


def _s(v: Any) -> str | None:
    return None if v is None else str(v)


def _int(v: Any, default: int = 0) -> int:
    try:
        return int(str(v).strip())
    except (TypeError, ValueError):
        try:
            return int(float(str(v)))
        except (TypeError, ValueError):
            return default


def _phone(v: Any) -> str | None:
    if v is None or v == "":
        return None
    return re.sub(r"\s", "", str(v))


class DolibarrData(SalesMixin, DocumentsMixin):
    """The whole simulated Dolibarr. Not thread safe; one asyncio loop drives it."""

    def __init__(
        self,
        *,
        main_currency: str = "EUR",
        multicurrency_enabled: bool = False,
        seed: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.main_currency = main_currency
        self.multicurrency_enabled = multicurrency_enabled
        self.clock = clock
        self.public_url = "http://127.0.0.1:8080"  # Dolibarr's $dolibarr_main_url_root (online_payment_url)
        self.thirdparties = Table("societe", ("ref_ext", "email", "barcode", "code_client", "name"))
        self.contacts = Table("socpeople", ("ref_ext", "email"))
        self.products = Table("product", ("ref", "ref_ext", "barcode"))
        # the Barcode module on: Product::verify() refuses a barcode another product holds (ErrorBarCodeAlreadyUsed)
        self.barcode_module = False
        self.categories = Table("categorie")
        self.category_links: dict[int, dict[tuple[str, int], None]] = {}  # cat id -> {(type, obj id)}
        self.attributes = Table("product_attribute", ("ref",))
        self.attribute_values = Table("product_attribute_value", ("fk_product_attribute",))
        self.combinations = Table("product_attribute_combination", ("fk_product_parent", "fk_product_child"))
        self.warehouses = Table("entrepot", ("ref",))
        self.stock: dict[int, dict[int, dict[str, Any]]] = {}  # product -> warehouse -> {rowid, reel}
        self._stock_rowid = 1
        self.stock_movements = Table("stock_mouvement")
        self.bank_accounts = Table("bank_account", ("ref",))
        self.bank_lines: list[dict[str, Any]] = []
        self.extrafields: dict[str, dict[str, Obj]] = {}
        self._extrafield_id = 1
        self.payment_types: list[Obj] = copy.deepcopy(shapes.PAYMENT_TYPES)
        self.documents: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.counters: dict[str, int] = {}
        self.company = copy.deepcopy(shapes.COMPANY)
        self._init_sales()
        if seed:
            self.seed()

    # ------------------------------------------------------------------------------------------------------
    # generic queries
    # ------------------------------------------------------------------------------------------------------
    def table(self, kind: str) -> Table:
        t = getattr(self, kind, None)
        if not isinstance(t, Table):
            raise KeyError(f"no table {kind!r}")
        return t

    def find(self, kind: str, **criteria: Any) -> list[Obj]:
        """Objects of ``kind`` (``"products"``, ``"thirdparties"``, ``"orders"`` ...) whose keys equal the
        criteria. Indexed keys (ref, ref_ext, email, barcode) are O(1); ids compare as strings."""
        t = self.table(kind)
        ids: list[int] | None = None
        rest = {}
        for k, v in criteria.items():
            if k in t.indexed and ids is None:
                ids = t.ids_by(k, v)
            else:
                rest[k] = v
        candidates = [t[i] for i in ids] if ids is not None else list(t.values_sorted())
        return [o for o in candidates if all(_eq(o.get(k), v) for k, v in rest.items())]

    def find_one(self, kind: str, **criteria: Any) -> Obj | None:
        found = self.find(kind, **criteria)
        return found[0] if found else None

    def count(self, kind: str) -> int:
        return len(self.table(kind))

    def now(self) -> int:
        return int(self.clock())

    def next_counter(self, name: str) -> int:
        self.counters[name] = self.counters.get(name, 0) + 1
        return self.counters[name]

    # ------------------------------------------------------------------------------------------------------
    # seed data (what a fresh install configured for the captures has)
    # ------------------------------------------------------------------------------------------------------
    def seed(self) -> None:
        if not self.warehouses:
            self.add_warehouse("WH1", "Main warehouse")
        if not self.bank_accounts:
            self.add_bank_account("BANK1", "Main bank account")
        if "product" not in self.extrafields:
            self.add_extrafield("product", "longdescription", "Long description", "text", pos=100)

    def add_warehouse(self, ref: str, description: str = "") -> int:
        wid = self.warehouses.new_id()
        w = copy.deepcopy(shapes.WAREHOUSE)
        w.update(id=str(wid), ref=ref, label=ref, description=description, lieu=description)
        self.warehouses.add(wid, w)
        return wid

    def add_bank_account(self, ref: str, label: str, currency: str | None = None) -> int:
        bid = self.bank_accounts.new_id()
        b = copy.deepcopy(shapes.BANK_ACCOUNT)
        now = self.now()
        cur = currency or self.main_currency
        b.update(
            id=str(bid),
            ref=ref,
            label=label,
            date_creation=now,
            date_modification=now,
            currency_code=cur,
            account_currency_code=cur,
        )
        self.bank_accounts.add(bid, b)
        return bid

    def add_extrafield(
        self,
        elementtype: str,
        name: str,
        label: str,
        type: str = "varchar",
        *,
        size: str = "",
        pos: int = 100,
        required: bool = False,
        unique: bool = False,
    ) -> Obj:
        """What an admin does in Setup > Modules > <module> > Attributes (the REST API of 20.0.2 has no call
        that creates an extrafield: ``api_setup.class.php`` only lists them)."""
        now = sql_datetime(self.now())
        d = copy.deepcopy(shapes.EXTRAFIELD)
        d.update(
            id=str(self._extrafield_id),
            type=type,
            label=label,
            size=size,
            elementtype=elementtype,
            unique="1" if unique else "0",
            required="1" if required else "0",
            pos=str(pos),
            datec=now,
            tms=now,
        )
        self._extrafield_id += 1
        self.extrafields.setdefault(elementtype, {})[name] = d
        return d

    def extrafield_type(self, elementtype: str, name: str) -> str | None:
        d = self.extrafields.get(elementtype, {}).get(name)
        return None if d is None else str(d["type"])

    def clean_array_options(self, elementtype: str, options: Any, *, via: str = "api") -> dict[str, Any]:
        """``array_options`` as Dolibarr stores them.

        Through REST (``via="api"``) every value goes through ``sanitizeVal(..., 'alphanohtml')``
        (``DolibarrApi::_checkValForAPI`` recurses into arrays and the ``options_*`` keys are not in
        ``$object->fields``), so HTML is stripped whatever the extrafield type. Through the GUI
        (``via="gui"``) an ``html`` extrafield keeps its HTML (``restricthtml``) and the others are stripped.
        Keys without an extrafield definition are dropped (there is no column to store them in).
        """
        out: dict[str, Any] = {}
        if not isinstance(options, dict):
            return out
        for k, v in options.items():
            key = str(k)
            name = key[8:] if key.startswith("options_") else key
            ftype = self.extrafield_type(elementtype, name)
            if ftype is None:
                continue
            if via == "gui" and ftype == "html":
                out["options_" + name] = restricthtml(v)
            elif ftype in ("int", "double", "price"):
                out["options_" + name] = None if v in (None, "") else str(v)
            else:
                out["options_" + name] = alphanohtml(v)
        return out

    def set_array_option(self, kind: str, oid: int, name: str, value: Any, *, via: str = "gui") -> None:
        """Set one extrafield value as the GUI would (``html`` type keeps its HTML)."""
        elementtype = {"products": "product", "thirdparties": "societe", "orders": "commande"}.get(kind, kind)
        obj = self.table(kind)[oid]
        opts = dict(obj.get("array_options") or {})
        opts.update(self.clean_array_options(elementtype, {name: value}, via=via))
        obj["array_options"] = opts

    # ------------------------------------------------------------------------------------------------------
    # dictionaries
    # ------------------------------------------------------------------------------------------------------
    def country(
        self, *, cid: int | None = None, code: str | None = None, iso: str | None = None
    ) -> Obj | None:
        for i, c2, c3, label in COUNTRIES:
            if (
                (cid is not None and i == cid)
                or (code is not None and c2 == code.upper())
                or (iso is not None and c3 == iso.upper())
            ):
                return {
                    "id": str(i),
                    "entity": None,
                    "code": c2,
                    "label": label,
                    "active": "1",
                    "code_iso": c3,
                }
        return None

    def payment_type(self, pid: Any) -> Obj | None:
        for p in self.payment_types:
            if str(p["id"]) == str(pid) or str(p["code"]) == str(pid):
                return p
        return None

    # ------------------------------------------------------------------------------------------------------
    # thirdparties
    # ------------------------------------------------------------------------------------------------------
    def _customer_code(self, ts: int) -> str:
        # mod_codeclient_monkey: CU{yymm}-{nnnnn}, one counter across months
        return f"CU{yymm(ts)}-{self.next_counter('code_client'):05d}"

    def _supplier_code(self, ts: int) -> str:
        return f"SU{yymm(ts)}-{self.next_counter('code_fournisseur'):05d}"

    def create_thirdparty(self, body: dict[str, Any]) -> int:
        if body.get("name") is None:
            raise DolibarrError(400, "name field missing", "api_thirdparties.class.php:1984")
        now = self.now()
        code = body.get("code_client")
        if code in ("auto", -1, "-1"):
            code = self._customer_code(now)
        elif code not in (None, ""):
            code = alphanohtml(code)
            if self.thirdparties.ids_by("code_client", code):
                raise DolibarrError(
                    500,
                    "Error creating thirdparty",
                    "api_thirdparties.class.php:267",
                    extra="ErrorCustomerCodeAlreadyUsed",
                )
        else:
            code = None
        tid = self.thirdparties.new_id()
        t = copy.deepcopy(shapes.THIRDPARTY)
        t.update(
            id=str(tid),
            ref=str(tid),
            ref_ext=None,
            note_private=None,
            note_public=None,
            date_creation=now,
            date_modification=now,
            name_alias=None,
            phone=None,
            email=None,
            address="",
            zip=None,
            town=None,
            country_id=None,
            country_code="",
            client="0",
            fournisseur="0",
            code_client=code,
            code_fournisseur=None,
            array_options={},
        )
        self.thirdparties.add(tid, t)
        self._apply_thirdparty(tid, body, creating=True)
        return tid

    def _apply_thirdparty(self, tid: int, body: dict[str, Any], *, creating: bool = False) -> None:
        fields: dict[str, Any] = {}
        for k, v in body.items():
            if k in ("id", "ref", "code_client", "array_options", "socid"):
                continue
            if k in ("note_private", "note_public"):
                fields[k] = restricthtml(v)
            elif k in ("phone", "phone_mobile", "fax"):
                fields[k] = _phone(v)
            elif k in (
                "client",
                "fournisseur",
                "status",
                "typent_id",
                "stcomm_id",
                "tva_assuj",
                "fk_account",
            ):
                fields[k] = str(_int(v))
            elif k == "country_id":
                c = self.country(cid=_int(v))
                fields["country_id"] = None if c is None else c["id"]
                fields["country_code"] = "" if c is None else c["code"]
            elif k == "country_code":
                c = self.country(code=str(v))
                if c is not None:
                    fields["country_id"] = c["id"]
                    fields["country_code"] = c["code"]
            elif k == "code_fournisseur":
                fields[k] = self._supplier_code(self.now()) if v in ("auto", -1, "-1") else alphanohtml(v)
            elif k in ("prospect",):
                fields[k] = _int(v)
            elif k in self.thirdparties[tid]:
                fields[k] = alphanohtml(v) if isinstance(v, str) else v
        if "array_options" in body:
            opts = dict(self.thirdparties[tid].get("array_options") or {})
            opts.update(self.clean_array_options("societe", body["array_options"]))
            fields["array_options"] = opts
        if not creating:
            fields["date_modification"] = self.now()
        self.thirdparties.update_obj(tid, **fields)

    def thirdparty(self, tid: int) -> Obj:
        t = self.thirdparties.get(tid)
        if t is None:
            raise DolibarrError(404, "Thirdparty not found", "api_thirdparties.class.php:2026")
        return t

    def update_thirdparty(self, tid: int, body: dict[str, Any]) -> Obj:
        self.thirdparty(tid)
        self._apply_thirdparty(tid, body)
        self.thirdparties[tid]["user_modification_id"] = "1"
        return self.thirdparty_out(tid, "update")

    def delete_thirdparty(self, tid: int) -> None:
        self.thirdparty(tid)
        if any(str(o["socid"]) == str(tid) for o in self.orders.values()) or any(
            str(i["socid"]) == str(tid) for i in self.invoices.values()
        ):
            raise DolibarrError(
                500,
                "Error when deleting thirdparty : ErrorRecordHasChildren",
                "api_thirdparties.class.php:408",
            )
        self.thirdparties.remove(tid)
        for links in self.category_links.values():
            for key in [k for k in links if k[1] == tid and k[0] in ("customer", "supplier")]:
                del links[key]

    def thirdparty_out(self, tid: int, variant: str = "get") -> Obj:
        t = dict(self.thirdparty(tid))
        if variant in ("list", "category"):
            t.pop("absolute_discount", None)
            t.pop("absolute_creditnote", None)
        elif variant == "update":
            t.pop("actiontypecode", None)
            t["socid"] = tid
            t["trackid"] = f"thi{tid}"
        return t

    # ------------------------------------------------------------------------------------------------------
    # contacts (no capture: Contact's main properties, in Dolibarr's order)
    # ------------------------------------------------------------------------------------------------------
    CONTACT_FIELDS: ClassVar[tuple[str, ...]] = (
        "civility_code",
        "lastname",
        "firstname",
        "poste",
        "address",
        "zip",
        "town",
        "country_id",
        "country_code",
        "state_id",
        "email",
        "phone_pro",
        "phone_perso",
        "phone_mobile",
        "fax",
        "birthday",
        "default_lang",
        "no_email",
        "note_public",
        "note_private",
        "ref_ext",
        "socid",
    )

    def create_contact(self, body: dict[str, Any]) -> int:
        if body.get("lastname") is None:
            raise DolibarrError(400, "lastname field missing", "api_contacts.class.php:640")
        cid = self.contacts.new_id()
        now = self.now()
        c: Obj = {
            "module": "societe",
            "id": str(cid),
            "entity": "1",
            "import_key": None,
            "array_options": {},
            "ref": str(cid),
            "statut": "1",
            "status": "1",
            "date_creation": now,
            "date_modification": now,
            "user_creation_id": "1",
            "user_modification_id": None,
            "specimen": 0,
            "socname": None,
            "priv": "0",
        }
        for k in self.CONTACT_FIELDS:
            c[k] = None
        self.contacts.add(cid, c)
        self._apply_contact(cid, body)
        return cid

    def _apply_contact(self, cid: int, body: dict[str, Any]) -> None:
        fields: dict[str, Any] = {}
        for k, v in body.items():
            if k not in self.CONTACT_FIELDS:
                continue
            if k in ("note_public", "note_private"):
                fields[k] = restricthtml(v)
            elif k in ("socid", "country_id", "state_id"):
                fields[k] = None if v in (None, "", 0, "0") else str(_int(v))
            elif k.startswith("phone") or k == "fax":
                fields[k] = _phone(v)
            else:
                fields[k] = alphanohtml(v) if isinstance(v, str) else v
        if "statut" in body:  # Contact::create and Contact::update write statut (0 = inactive)
            fields["statut"] = fields["status"] = str(_int(body["statut"]))
        if "socid" in fields and fields["socid"] is not None:
            tp = self.thirdparties.get(_int(fields["socid"]))
            fields["socname"] = None if tp is None else tp["name"]
        if "country_id" in fields and fields["country_id"] is not None:
            country = self.country(cid=_int(fields["country_id"]))
            fields["country_code"] = None if country is None else country["code"]
        if "array_options" in body:
            opts = dict(self.contacts[cid].get("array_options") or {})
            opts.update(self.clean_array_options("socpeople", body["array_options"]))
            fields["array_options"] = opts
        self.contacts.update_obj(cid, **fields)

    def contact(self, cid: int) -> Obj:
        c = self.contacts.get(cid)
        if c is None:
            raise DolibarrError(404, "Contact not found", "api_contacts.class.php:105")
        return c

    def update_contact(self, cid: int, body: dict[str, Any]) -> Obj:
        self.contact(cid)
        self._apply_contact(cid, body)
        self.contacts[cid]["date_modification"] = self.now()
        return dict(self.contacts[cid])

    # ------------------------------------------------------------------------------------------------------
    # products and services
    # ------------------------------------------------------------------------------------------------------
    def create_product(self, body: dict[str, Any], *, via_api: bool = True) -> int:
        """``POST /products``: the API's ``_checkValForAPI`` (``alphanohtml`` on the ref and every other scalar
        but the notes and the description, when ``via_api``), then ``Product::create``, which stores the ref as
        ``dol_sanitizeFileName(dol_string_nospecial(trim($ref)))`` (``O'Neil (50%) x`` -> ``O_Neil_(50%)_x``,
        ``CAFÉ`` -> ``CAFE``). ``via_api=False``: a product made by Dolibarr itself (a variant's child)."""
        if body.get("ref") is None:
            raise DolibarrError(400, "ref field missing", "api_products.class.php:2088")
        if body.get("label") is None:
            raise DolibarrError(400, "label field missing", "api_products.class.php:2088")
        ref = product_ref_on_create(alphanohtml(str(body["ref"])) if via_api else str(body["ref"]))
        if not str(alphanohtml(str(body["label"]))).strip():
            raise DolibarrError(
                500,
                "Error creating product",
                "api_products.class.php:325",
                extra="ErrorMandatoryParametersNotProvided",
            )
        if ref in ("", "0", "auto"):  # empty($this->ref): the ref would come from the numbering module (none)
            raise DolibarrError(
                500,
                "Error creating product",
                "api_products.class.php:325",
                extra="ProductModuleNotSetupForAutoRef",
            )
        if self.products.ids_by("ref", ref):
            raise DolibarrError(
                500, "Error creating product", "api_products.class.php:325", extra="ErrorProductAlreadyExists"
            )
        self._check_barcode(body, None, "Error creating product")
        pid = self.products.new_id()
        now = sql_datetime(self.now())
        p = copy.deepcopy(shapes.PRODUCT)
        p.update(
            id=str(pid),
            ref=ref,
            ref_ext=None,
            array_options={},
            date_creation=now,
            date_modification=now,
            label="",
            description="",
            type="0",
            status="0",
            status_buy="0",
            price="0.00000000",
            price_ttc="0.00000000",
            price_base_type="HT",
            tva_tx="0.0000",
            weight=None,
            note_public=None,
            note_private=None,
            barcode=None,
            cost_price=None,
            pmp="0.00000000",
            duration="",
            url=None,
        )
        self.products.add(pid, p)
        self._apply_product(pid, body, creating=True)
        return pid

    def _check_barcode(self, body: dict[str, Any], pid: int | None, message: str) -> None:
        barcode = str(body.get("barcode") or "").strip()
        if not self.barcode_module or not barcode:
            return
        holders = [i for i in self.products.ids_by("barcode", alphanohtml(barcode)) if i != pid]
        if holders:
            raise DolibarrError(500, message, "api_products.class.php:325", extra="ErrorBarCodeAlreadyUsed")

    def _apply_product(self, pid: int, body: dict[str, Any], *, creating: bool = False) -> None:
        p = self.products[pid]
        if not creating:
            self._check_barcode(body, pid, "Error updating product")
        fields: dict[str, Any] = {}
        for k, v in body.items():
            if k in ("id", "array_options", "price", "price_ttc", "price_base_type", "tva_tx", "ref"):
                continue
            if k in ("description", "note_public", "note_private"):
                fields[k] = restricthtml(v) if v is not None else None
            elif k in ("type", "status", "status_buy", "tosell", "tobuy", "finished", "tobatch"):
                key = {"tosell": "status", "tobuy": "status_buy", "tobatch": "status_batch"}.get(k, k)
                fields[key] = str(_int(v))
            elif k in ("weight", "length", "width", "height", "surface", "volume"):
                fields[k] = None if v in (None, "") else sfloat(dec(v))
            elif k.endswith("_units"):
                fields[k] = None if v in (None, "", 0, "0") else str(_int(v))
            elif k in ("cost_price", "price_min", "price_min_ttc", "pmp"):
                fields[k] = None if v in (None, "") else s8(dec(v))
            elif k in ("barcode", "ref_ext", "url"):
                fields[k] = None if v in (None, "") else alphanohtml(v)
            elif k in ("seuil_stock_alerte", "desiredstock"):
                fields[k] = str(_int(v))
            elif k in p and k not in ("stock_reel", "stock_theorique", "stock_warehouse", "multiprices"):
                fields[k] = alphanohtml(v) if isinstance(v, str) else v
        if "ref" in body and not creating:
            # Product::update: dol_string_nospecial(trim($ref)) only (no unaccenting, no file name rules)
            ref = product_ref_on_update(alphanohtml(str(body["ref"])))
            if ref.casefold() != str(p["ref"]).casefold() and self.products.ids_by("ref", ref):
                raise DolibarrError(
                    500,
                    "Error updating product",
                    "api_products.class.php:420",
                    extra="ErrorProductAlreadyExists",
                )
            fields["ref"] = ref
        if "array_options" in body:
            opts = dict(p.get("array_options") or {})
            opts.update(self.clean_array_options("product", body["array_options"]))
            fields["array_options"] = opts
        if any(k in body for k in ("price", "price_ttc", "tva_tx", "price_base_type")) or creating:
            base = str(body.get("price_base_type") or p["price_base_type"] or "HT").upper()
            tva = dec(body["tva_tx"]) if "tva_tx" in body else dec(p["tva_tx"])
            # Product::create and Product::updatePrice round unit prices with price2num(..., 'MU') (5 decimals);
            # create then stores both with price2num(..., 'MT'): to the cent (product.class.php:728-735, 859-860).
            # Real 20.0.2: POST price 7.416667 stores 7.42, a PUT of the same body 7.41667.
            if base == "TTC":
                ttc = mu(dec(body.get("price_ttc", body.get("price")), p["price_ttc"]))
                ht = mu(ttc / (1 + tva / 100))
            else:
                base = "HT"
                ht = mu(dec(body.get("price"), p["price"]))
                ttc = mu(ht * (1 + tva / 100))
            if creating:
                ht, ttc = mt(ht), mt(ttc)
            fields.update(price=s8(ht), price_ttc=s8(ttc), price_base_type=base, tva_tx=s4(tva))
        if not creating:
            fields["duration"] = "0"
            fields["date_modification"] = sql_datetime(self.now())
        self.products.update_obj(pid, **fields)

    def product(self, pid: int) -> Obj:
        p = self.products.get(pid)
        if p is None:
            raise DolibarrError(404, "Product not found", "api_products.class.php:2128")
        return p

    def update_product(self, pid: int, body: dict[str, Any]) -> Obj:
        before = dict(self.product(pid))
        self._apply_product(pid, body)
        # Product::update ends with updateProperties() on every variant of a parent (product.class.php)
        for cid in self.combinations.ids_by("fk_product_parent", str(pid)):
            self.update_variant_properties(cid, parent_before=before)
        out = self.product_out(pid)
        p = self.products[pid]
        if any(k in body for k in ("price", "price_ttc", "tva_tx", "price_base_type")):
            out.update(
                multiprices=[_num(p["price"])],
                multiprices_ttc=[_num(p["price_ttc"])],
                multiprices_base_type=[p["price_base_type"]],
                multiprices_default_vat_code=[None],
                multiprices_min=[sfloat(dec(p["price_min"]))],
                multiprices_min_ttc=[sfloat(dec(p["price_min_ttc"]))],
                multiprices_tva_tx=[sfloat(dec(p["tva_tx"]))],
                level=0,
            )
        return out

    def product_is_used(self, pid: int) -> bool:
        sp = str(pid)
        for doc in list(self.orders.values()) + list(self.invoices.values()):
            if any(ln.get("fk_product") == sp for ln in doc["lines"]):
                return True
        return bool(
            self.combinations.ids_by("fk_product_child", sp)
            or self.combinations.ids_by("fk_product_parent", sp)
        )

    def delete_product(self, pid: int, *, force_conflict: bool = False) -> None:
        self.product(pid)
        if force_conflict or self.product_is_used(pid):
            raise DolibarrError(
                409, "Can't delete, that product is probably used", "api_products.class.php:532"
            )
        self.products.remove(pid)
        self.stock.pop(pid, None)
        for links in self.category_links.values():
            links.pop(("product", pid), None)
        self.documents.pop(("product", str(pid)), None)

    def product_stock(self, pid: int) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for wid, row in sorted(self.stock.get(pid, {}).items()):
            out[str(wid)] = {"real": sfloat(row["reel"]), "id": str(row["rowid"])}
        return out

    def product_out(self, pid: int, *, includestockdata: bool = False) -> Obj:
        p = dict(self.product(pid))
        if includestockdata:
            total = sum((row["reel"] for row in self.stock.get(pid, {}).values()), Decimal(0))
            p["stock_reel"] = _num(sfloat(total))
            p["stock_theorique"] = _num(sfloat(total))
            p["stock_warehouse"] = self.product_stock(pid)
        return p

    # ------------------------------------------------------------------------------------------------------
    # categories
    # ------------------------------------------------------------------------------------------------------
    def create_category(self, body: dict[str, Any]) -> int:
        if body.get("label") is None:
            raise DolibarrError(400, "label field missing", "api_categories.class.php:741")
        if body.get("type") is None:
            raise DolibarrError(400, "type field missing", "api_categories.class.php:741")
        ctype = _category_type(body["type"])
        if ctype is None:
            raise DolibarrError(500, "Error when creating category", "api_categories.class.php:251")
        label = alphanohtml(str(body["label"]))
        parent = _int(body.get("fk_parent"), 0)
        if parent and parent not in self.categories:
            raise DolibarrError(
                500,
                "Error when creating category",
                "api_categories.class.php:251",
                extra="ErrorParentNotFound",
            )
        for c in self.categories.values():
            if (
                c["type"] == str(ctype)
                and c["fk_parent"] == parent
                and str(c["label"]).casefold() == label.casefold()
            ):
                raise DolibarrError(
                    500,
                    "Error when creating category",
                    "api_categories.class.php:251",
                    extra=f"Impossible to add the tag/category {label} : "
                    "Tag/category already exists at this level",
                )
        cid = self.categories.new_id()
        now = self.now()
        c = copy.deepcopy(shapes.CATEGORY)
        c.update(
            id=str(cid),
            ref_ext=None,
            date_creation=now,
            date_modification=now,
            user_modification_id=0,
            fk_parent=parent,
            label=label,
            description=restricthtml(body.get("description") or ""),
            color=alphanohtml(body.get("color") or ""),
            position=str(_int(body.get("position"), 0)),
            visible=_int(body.get("visible"), 0),
            type=str(ctype),
            array_options={},
        )
        self.categories.add(cid, c)
        self.category_links[cid] = {}
        return cid

    def category(self, cid: int) -> Obj:
        c = self.categories.get(cid)
        if c is None:
            raise DolibarrError(404, "category not found", "api_categories.class.php:110")
        return c

    def update_category(self, cid: int, body: dict[str, Any]) -> Obj:
        self.category(cid)
        fields: dict[str, Any] = {"ref_ext": "", "user_modification_id": 1}
        for k, v in body.items():
            if k == "label":
                fields[k] = alphanohtml(v)
            elif k == "description":
                fields[k] = restricthtml(v)
            elif k == "color":
                fields[k] = alphanohtml(v)
            elif k == "fk_parent":
                fields[k] = _int(v)
            elif k in ("position",):
                fields[k] = str(_int(v))
            elif k == "visible":
                fields[k] = _int(v)
            elif k == "ref_ext":
                fields[k] = alphanohtml(v) or ""
        self.categories.update_obj(cid, **fields)
        return dict(self.categories[cid])

    def delete_category(self, cid: int) -> None:
        self.category(cid)
        self.categories.remove(cid)
        self.category_links.pop(cid, None)
        for c in self.categories.values():
            if c["fk_parent"] == cid:
                c["fk_parent"] = 0

    def _linkable(self, otype: str, oid: int) -> None:
        table = {"product": self.products, "customer": self.thirdparties, "supplier": self.thirdparties}.get(
            otype, self.contacts if otype == "contact" else None
        )
        if table is None:
            raise DolibarrError(400, "Wrong value for type", "api_categories.class.php:590")
        if oid not in table:
            raise DolibarrError(404, f"{otype} not found", "api_categories.class.php:600")

    def link_category(self, cid: int, otype: str, oid: int) -> None:
        self.category(cid)
        self._linkable(otype, oid)
        self.category_links.setdefault(cid, {})[(otype, oid)] = None

    def unlink_category(self, cid: int, otype: str, oid: int) -> None:
        self.category(cid)
        self._linkable(otype, oid)
        self.category_links.setdefault(cid, {}).pop((otype, oid), None)

    def categories_of(self, otype: str, oid: int) -> list[int]:
        return sorted(cid for cid, links in self.category_links.items() if (otype, oid) in links)

    def category_short(self, cid: int) -> Obj:
        c = self.categories[cid]
        out = copy.deepcopy(shapes.CATEGORY_SHORT)
        for k in ("id", "fk_parent", "label", "description", "color", "position", "visible", "type"):
            out[k] = c[k]
        out["ref_ext"] = c["ref_ext"] if c["ref_ext"] is not None else ""
        out["array_options"] = c.get("array_options") or {}
        return out

    # ------------------------------------------------------------------------------------------------------
    # product attributes, values, variants
    # ------------------------------------------------------------------------------------------------------
    def create_attribute(self, body: dict[str, Any]) -> int:
        for f in ("ref", "label"):
            if body.get(f) in (None, ""):
                raise DolibarrError(400, f"{f} field missing", "api_products.class.php:1300")
        ref = alphanohtml(str(body["ref"])).upper()
        if self.attributes.ids_by("ref", ref):
            raise DolibarrError(500, "Error creating new attribute", "api_products.class.php:1310")
        aid = self.attributes.new_id()
        a = copy.deepcopy(shapes.ATTRIBUTE_LONG)
        a.update(
            id=str(aid),
            entity="1",
            ref=ref,
            ref_ext=alphanohtml(body.get("ref_ext")) or None,
            label=alphanohtml(str(body["label"])),
            position=str(len(self.attributes) + 1),
        )
        self.attributes.add(aid, a)
        return aid

    def attribute(self, aid: int) -> Obj:
        a = self.attributes.get(aid)
        if a is None:
            raise DolibarrError(404, "Product attribute not found", "api_products.class.php:1220")
        return a

    def attribute_short(self, aid: int) -> Obj:
        a = self.attribute(aid)
        out = copy.deepcopy(shapes.ATTRIBUTE_SHORT)
        out.update(id=a["id"], ref=a["ref"], ref_ext=a["ref_ext"], label=a["label"], position=a["position"])
        out["is_used_by_products"] = 1 if self._attribute_used(aid) else 0
        return out

    def _attribute_used(self, aid: int) -> bool:
        return any(str(aid) in c["_features"] for c in self.combinations.values())

    def update_attribute(self, aid: int, body: dict[str, Any]) -> Obj:
        self.attribute(aid)
        fields = {k: alphanohtml(v) for k, v in body.items() if k in ("ref", "ref_ext", "label")}
        if "ref" in fields:
            fields["ref"] = str(fields["ref"]).upper()
        self.attributes.update_obj(aid, **fields)
        return self.attribute_short(aid)

    def delete_attribute(self, aid: int) -> None:
        self.attribute(aid)
        if self._attribute_used(aid):
            raise DolibarrError(500, "Error deleting attribute", "api_products.class.php:1420")
        self.attributes.remove(aid)
        for vid in [v for v, val in self.attribute_values.items() if val["fk_product_attribute"] == str(aid)]:
            self.attribute_values.remove(vid)

    def create_attribute_value(self, aid: int, body: dict[str, Any]) -> int:
        self.attribute(aid)
        for f in ("ref", "value"):
            if body.get(f) in (None, ""):
                raise DolibarrError(400, f"{f} field missing", "api_products.class.php:1500")
        ref = alphanohtml(str(body["ref"]))
        for vid0 in self.attribute_values.ids_by("fk_product_attribute", str(aid)):
            if str(self.attribute_values[vid0]["ref"]).casefold() == ref.casefold():
                raise DolibarrError(500, "Error creating new attribute value", "api_products.class.php:1520")
        vid = self.attribute_values.new_id()
        val = copy.deepcopy(shapes.ATTRIBUTE_VALUE)
        val.update(id=str(vid), ref=ref, fk_product_attribute=str(aid), value=alphanohtml(str(body["value"])))
        self.attribute_values.add(vid, val)
        return vid

    def attribute_values_of(self, aid: int) -> list[Obj]:
        self.attribute(aid)
        return [
            dict(self.attribute_values[v])
            for v in self.attribute_values.ids_by("fk_product_attribute", str(aid))
        ]

    def create_variant(self, parent_id: int, body: dict[str, Any], *, fail: bool = False) -> int:
        """``POST /products/{id}/variants`` (ProductCombination::createProductCombination).

        Quirks of 20.0.2 kept here: the child copies the *parent's* ``ref_ext`` and the ``ref_ext`` sent lands
        in the combination's ``variation_ref_ext``; posting a feature set that already has a combination
        creates a new child product and points the existing combination at it (the old child stays, unlinked).
        """
        parent = self.product(parent_id)
        for f in ("weight_impact", "price_impact", "price_impact_is_percent", "features"):
            if f not in body:
                raise DolibarrError(400, f"`{f}` is required.", "Validator.php:436", stage="validate")
        features = body["features"]
        if not isinstance(features, dict) or not features:
            raise DolibarrError(400, "Features not defined", "api_products.class.php:1700")
        pairs: list[tuple[Obj, Obj]] = []
        for a, v in features.items():
            attr = self.attributes.get(_int(a))
            val = self.attribute_values.get(_int(v))
            if attr is None or val is None or val["fk_product_attribute"] != attr["id"]:
                raise DolibarrError(404, "Product attribute value not found", "api_products.class.php:1710")
            pairs.append((attr, val))
        fkey = {a["id"]: v["id"] for a, v in pairs}
        percent = bool(body.get("price_impact_is_percent")) and body.get("price_impact_is_percent") not in (
            "0",
            "false",
        )
        price_impact = dec(body.get("price_impact"))
        weight_impact = dec(body.get("weight_impact"))
        if fail:
            # createProductCombination() returned -1, rolled back: a write that lost to a parallel one
            # (DolibarrSimOptions.variant_failure_rate), nothing stored
            raise DolibarrError(500, "Error creating new product variant", "api_products.class.php:1838")
        siblings = [
            self.combinations[i] for i in self.combinations.ids_by("fk_product_parent", str(parent_id))
        ]
        existing = next((c for c in siblings if c["_features"] == fkey), None)
        description = "".join(f"<br><strong>{a['label']}:</strong> {v['value']}" for a, v in pairs)
        # $reference is a parameter of addVariant, not sanitized by the API; Product::create cleans the ref
        forced = php_trim(str(body.get("reference") or ""))
        adopted = self.products.first_by("ref", forced) if forced and forced != parent["ref"] else None
        if adopted is not None:
            # Product::fetch(0, $reference) found a product: it becomes the child as it is (its own ref_ext,
            # label and price), given the attributes in its description and the weight impact, then saved
            cid = int(adopted["id"])
            weight = None
            if adopted["weight"] is not None or weight_impact:
                weight = sfloat(dec(adopted["weight"]) + weight_impact)
            self.products.update_obj(
                cid,
                description=(str(adopted["description"] or "") + description).removeprefix("<br>"),
                weight=weight,
                date_modification=sql_datetime(self.now()),
            )
        else:
            default = str(parent["ref"]) + "".join("_" + str(v["ref"]) for _, v in pairs)
            stored = product_ref_on_create(forced if forced and forced != parent["ref"] else default)
            old_child = _int(existing["fk_product_child"]) if existing is not None else 0
            if self.products.ids_by("ref", stored) and old_child in self.products:
                # ErrorProductAlreadyExists with an existing combination: it keeps its child (fetched as is)
                cid = old_child
                adopted = self.products[old_child]
            else:
                # ErrorProductAlreadyExists otherwise: the ref gets 1, 2, ... until Product::create accepts it
                ref, n = stored, 1
                while self.products.ids_by("ref", ref):
                    ref, n = product_ref_on_create(f"{stored}{n}"), n + 1
                cid = self._create_variant_child(parent, pairs, ref, price_impact, weight_impact, percent)
                self.products.update_obj(
                    cid, description=(str(parent["description"] or "") + description).removeprefix("<br>")
                )
        values = {
            "fk_product_child": str(cid),
            "variation_price": s8(price_impact),
            "variation_price_percentage": "0",
            "variation_weight": sfloat(weight_impact),
            "variation_ref_ext": alphanohtml(body.get("ref_ext")) or "",
        }
        if existing is not None:
            comb_id = int(existing["id"])
            self.combinations.update_obj(comb_id, **values)
        else:
            comb_id = self.combinations.new_id()
            comb = copy.deepcopy(shapes.COMBINATION)
            comb.update(id=str(comb_id), fk_product_parent=str(parent_id), **values)
            comb["attributes"] = []
            comb["_features"] = fkey
            self.combinations.add(comb_id, comb)
        if (
            adopted is not None
        ):  # ProductCombination::update -> updateProperties(): the parent's price + impact
            self.update_variant_properties(comb_id)
        return cid

    def _create_variant_child(
        self,
        parent: Obj,
        pairs: list[tuple[Obj, Obj]],
        ref: str,
        price_impact: Decimal,
        weight_impact: Decimal,
        percent: bool,
    ) -> int:
        """The new child: a clone of the parent (its ``ref_ext`` and extrafields too) under ``ref``."""
        base_price = dec(parent["price"])
        price = base_price * (1 + price_impact / 100) if percent else base_price + price_impact
        tva = dec(parent["tva_tx"])
        child_body: dict[str, Any] = {
            "ref": ref,
            "label": str(parent["label"]) + "".join(" " + str(v["value"]) for _, v in pairs),
            "type": parent["type"],
            "status": parent["status"],
            "status_buy": parent["status_buy"],
            "price": str(mu(price)),
            "price_base_type": "HT",
            "tva_tx": str(tva),
        }
        cid = self.create_product(child_body, via_api=False)
        weight = None
        if parent["weight"] is not None or weight_impact:
            weight = sfloat(dec(parent["weight"]) + weight_impact)
        self.products.update_obj(
            cid,
            ref_ext=parent["ref_ext"],
            array_options=dict(parent.get("array_options") or {}),
            weight=weight,
            weight_units=parent["weight_units"],
            duration="0",
        )
        return cid

    def update_variant(self, comb_id: int, body: dict[str, Any]) -> int:
        """``PUT /products/variants/{id}`` (api_products putVariant): the combination's own fields
        (``variation_price``, ``variation_price_percentage``, ``variation_weight``, ``variation_ref_ext``) are
        set, then ``ProductCombination::update`` calls ``updateProperties()``: the child's price and weight are
        computed again from the parent's. Answers 1."""
        comb = self.combinations.get(comb_id)
        if comb is None:
            # fetch() fails, update() then writes nothing: the API answers its 500
            raise DolibarrError(500, "Error editing variant", "api_products.class.php:1790")
        fields: dict[str, Any] = {}
        for key, value in body.items():
            if key == "variation_price":
                fields[key] = s8(dec(value))
            elif key == "variation_weight":
                fields[key] = sfloat(dec(value))
            elif key == "variation_price_percentage":
                fields[key] = "1" if value not in (None, "", 0, "0", False, "false") else "0"
            elif key == "variation_ref_ext":
                fields[key] = alphanohtml(value) or ""
        self.combinations.update_obj(comb_id, **fields)
        self.update_variant_properties(comb_id)
        return 1

    def update_variant_properties(self, comb_id: int, *, parent_before: Obj | None = None) -> None:
        """``ProductCombination::updateProperties($parent)``: the child takes the parent's weight (plus the
        combination's weight impact), price (plus the price impact, or times 1 + impact/100) and VAT rate, and
        the parent's status when the parent's status has just changed. The child's label is left alone once it
        differs from the parent's."""
        comb = self.combinations[comb_id]
        parent = self.products.get(_int(comb["fk_product_parent"]))
        child_id = _int(comb["fk_product_child"])
        child = self.products.get(child_id)
        if parent is None or child is None:
            return
        fields: dict[str, Any] = {}
        weight = dec(parent["weight"]) if parent["weight"] is not None else Decimal(0)
        impact_w = dec(comb["variation_weight"])
        if parent["weight"] is not None or impact_w:
            fields["weight"] = sfloat(weight + impact_w)
        fields["weight_units"] = parent["weight_units"]
        if parent_before is not None:
            for key in ("status", "status_buy"):
                if parent[key] != parent_before.get(key):
                    fields[key] = parent[key]
        price = dec(parent["price"])
        impact = dec(comb["variation_price"])
        if comb["variation_price_percentage"] not in ("0", 0, None, ""):
            price = price * (1 + impact / 100) if price else price
        else:
            price = price + impact
        tva = dec(parent["tva_tx"])
        fields.update(
            price=s8(mu(price)),
            price_ttc=s8(mu(mu(price) * (1 + tva / 100))),
            price_base_type="HT",
            tva_tx=s4(tva),
            date_modification=sql_datetime(self.now()),
        )
        self.products.update_obj(child_id, **fields)

    def variants_of(self, parent_id: int) -> list[Obj]:
        self.product(parent_id)
        out = []
        for cid in self.combinations.ids_by("fk_product_parent", str(parent_id)):
            c = self.combinations[cid]
            o = {k: v for k, v in c.items() if not k.startswith("_")}
            o["attributes"] = [
                {
                    "id": a,
                    "fk_prod_combination": c["id"],
                    "fk_prod_attr": a,
                    "fk_prod_attr_val": v,
                    "error": None,
                    "errors": [],
                }
                for a, v in c["_features"].items()
            ]
            out.append(o)
        return out

    def variant_parent(self, child_id: int) -> int | None:
        c = self.combinations.first_by("fk_product_child", str(child_id))
        return None if c is None else int(c["fk_product_parent"])

    # ------------------------------------------------------------------------------------------------------
    # stock
    # ------------------------------------------------------------------------------------------------------
    def warehouse(self, wid: int) -> Obj:
        w = self.warehouses.get(wid)
        if w is None:
            raise DolibarrError(404, "warehouse not found", "api_warehouses.class.php:80")
        return w

    def move_stock(
        self,
        product_id: int,
        warehouse_id: int,
        qty: Decimal,
        *,
        label: str = "",
        inventorycode: str | None = None,
        price: Decimal = Decimal(0),
        mtype: int | None = None,
        origin: tuple[str, int] | None = None,
        kept: bool = True,
    ) -> int:
        """One llx_stock_mouvement row and the stock / PMP it changes (MouvementStock::_create). ``kept=False``:
        the movement is checked and numbered as usual but nothing is stored (what the live server answered 200
        to under parallel writes: ``DolibarrSimOptions.lost_movement_rate``)."""
        if qty == 0:
            raise DolibarrError(
                503,
                "Making a stock movement with a quantity of 0 is not possible",
                "api_stockmovements.class.php:183",
            )
        if product_id not in self.products:
            raise DolibarrError(
                503,
                "Error when create stock movement : ErrorProductIdDoesNotExists",
                "api_stockmovements.class.php:190",
            )
        if warehouse_id not in self.warehouses:
            raise DolibarrError(
                503,
                "Error when create stock movement : ErrorWarehouseNotFound",
                "api_stockmovements.class.php:190",
            )
        if self.products[product_id]["type"] == "1":
            # a service keeps no stock (STOCK_SUPPORTS_SERVICES off): _create() moves nothing and returns 0,
            # which the API reports with the movement's empty error (live 20.0.2)
            raise DolibarrError(
                503, "Error when create stock movement : ", "api_stockmovements.class.php:205"
            )
        if not kept:
            return self.stock_movements.new_id()
        rows = self.stock.setdefault(product_id, {})
        row = rows.get(warehouse_id)
        if row is None:
            row = rows[warehouse_id] = {"rowid": self._stock_rowid, "reel": Decimal(0)}
            self._stock_rowid += 1
        p = self.products[product_id]
        if qty > 0 and price > 0:
            total_before = sum((r["reel"] for r in rows.values()), Decimal(0))
            old_pmp = dec(p["pmp"])
            if total_before + qty != 0:
                new_pmp = (max(total_before, Decimal(0)) * old_pmp + qty * price) / (
                    max(total_before, Decimal(0)) + qty
                )
                p["pmp"] = s8(mu(new_pmp))
        row["reel"] += qty
        mid = self.stock_movements.new_id()
        m = copy.deepcopy(shapes.STOCK_MOVEMENT)
        now = self.now()
        m.update(
            id=str(mid),
            tms=now,
            datem=now,
            warehouse_id=str(warehouse_id),
            product_id=str(product_id),
            qty=sfloat(qty),
            type=str(mtype if mtype is not None else (3 if qty > 0 else 2)),
            price=s8(price),
            label=label,
            inventorycode=inventorycode or None,
            fk_origin=str(origin[1]) if origin else "0",
            origintype=origin[0] if origin else "",
            origin_type=origin[0] if origin else "",
            origin_id=str(origin[1]) if origin else "0",
        )
        self.stock_movements.add(mid, m)
        return mid

    # ------------------------------------------------------------------------------------------------------
    # sqlfilters columns (what t.* / ef.* map to, per list endpoint)
    # ------------------------------------------------------------------------------------------------------
    def columns(self, kind: str) -> Columns:
        return columns_for(self, kind)


def _eq(a: Any, b: Any) -> bool:
    if a == b:
        return True
    if isinstance(a, str) and isinstance(b, int | float) and not isinstance(b, bool):
        return a == str(b)
    return False


def _num(s: Any) -> int | float:
    d = dec(s)
    return int(d) if d == d.to_integral_value() else float(d)


def _category_type(v: Any) -> int | None:
    if isinstance(v, int) or (isinstance(v, str) and v.isdigit()):
        return int(v) if int(v) in CATEGORY_TYPE_NAMES else None
    return CATEGORY_TYPES.get(str(v))

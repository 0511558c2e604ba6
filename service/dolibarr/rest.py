"""The Dolibarr REST backend: :class:`DolibarrRestClient` implements
:class:`~service.dolibarr.port.DolibarrPort` over ``{dolibarr.url}`` (``.../api/index.php``) with the
``DOLAPIKEY`` header and JSON bodies.

Request discipline (the HTTP core, ``rest_http.py``: :class:`~service.dolibarr.rest_http.RestHttp`, which this
client extends with the port's calls):

- one :class:`aiohttp.ClientSession` (given, or owned), bodies read raw (``auto_decompress=False``) and
  inflated here only when they really are gzip (Dolibarr's technical error page lies about it, see
  ``errors.py``);
- at most ``max_concurrency`` requests in flight; validations (which race for the next number) one at a time;
- idempotent calls (GET, PUT, DELETE, and the POST actions Dolibarr makes idempotent: validate, close,
  category links, uploads that overwrite) are retried on :class:`~service.errors.TransientError` with
  exponential backoff and full jitter (``Retry-After`` honoured up to ``retry.max_delay_s``); a non-idempotent
  POST is never retried: a timeout, reset or unexplained 5xx raises :class:`~service.errors.AmbiguousWrite`
  and the engine looks the object up by ``ref_ext`` first;
- every error carries ``Where(side="dolibarr", resource=kind, record_id=...)`` and never quotes the API key.

Lookups trust nothing the database collation says: a ``sqlfilters`` or ``/ref_ext/{x}`` answer is filtered
here for exact equality (MySQL's ``_ci`` collations ignore case, accents and trailing spaces). A value that
cannot be written safely into a URL path or a ``sqlfilters`` expression (``sqlfilters.py``) is looked up by
scanning the longest safe ``like`` prefix instead. The mapping of payloads to calls is documented in
``docs/dolibarr-rest.md``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import time
import unicodedata
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Generic, TypeVar
from urllib.parse import quote

import aiohttp
import structlog

from service.dolibarr.charset import storable
from service.dolibarr.errors import (
    CategoryAlreadyExists,
    RefAlreadyExists,
)
from service.dolibarr.model import (
    CategoryPayload,
    ContactPayload,
    DocumentKind,
    DocumentPayload,
    DocumentStatus,
    ObjectKind,
    Payload,
    PaymentPayload,
    ProductPayload,
    Ref,
    ThirdpartyPayload,
)
from service.dolibarr.port import (
    Capabilities,
    DocumentTotals,
    DolibarrPort,
    Ids,
    Part,
    RemoteDocumentFile,
    RemoteObject,
)
from service.dolibarr.refs import stored_product_ref
from service.dolibarr.rest_bodies import (
    category_body,
    contact_body,
    document_body,
    line_body,
    money,
    payment_body,
    price_after_create,
    product_body,
    quantity,
    stock_movement_body,
    thirdparty_body,
)
from service.dolibarr.rest_compare import COMPARED_FIELDS, body_held, differing_fields
from service.dolibarr.rest_http import PAGE_SIZE, RESOURCES, RestHttp, _int
from service.dolibarr.sqlfilters import (
    UnsafeFilterValue,
    escape_like,
    safe_like_prefix,
    sql_eq,
    sql_like_prefix,
    waf_refuses,
)
from service.errors import (
    AmbiguousWrite,
    BadResponse,
    ConfigError,
    NotFound,
    PermanentError,
    SyncError,
)
from service.settings import DolibarrSettings, RetrySettings

__all__ = [
    "PAGE_SIZE",
    "RESOURCES",
    "DolibarrRestClient",
    "category_body",
    "contact_body",
    "document_body",
    "line_body",
    "payment_body",
    "product_body",
    "stock_movement_body",
    "thirdparty_body",
]

log = structlog.get_logger("service.dolibarr.rest")

# capability -> (Dolibarr module name as GET /setup/modules lists it, route to probe when it cannot be read)
MODULE_PROBES: Final = (
    ("categories", "categorie", "/categories"),
    ("variants", "variants", "/products/attributes"),
    ("stock", "stock", "/warehouses"),
    ("payments", "banque", "/bankaccounts"),
    ("multicurrency", "multicurrency", "/multicurrencies"),
)
# what set_active writes, per kind
STATUS_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "product": ("status", "status_buy"),
    "thirdparty": ("status",),
    "contact": ("statut",),
}
# /categories/{id}/objects/{type}/{object_id}
CATEGORY_OBJECT_TYPES: Final[Mapping[str, str]] = {
    "product": "product",
    "thirdparty": "customer",
    "contact": "contact",
}
# /documents?modulepart=...
DOCUMENT_MODULEPARTS: Final[Mapping[str, str]] = {
    "product": "product",
    "order": "order",
    "invoice": "invoice",
}

# Dolibarr order/invoice status codes (Commande::STATUS_*, Facture::STATUS_*)
ORDER_DRAFT, ORDER_VALIDATED, ORDER_SHIPPING, ORDER_CLOSED, ORDER_CANCELED = 0, 1, 2, 3, -1
INVOICE_DRAFT, INVOICE_VALIDATED, INVOICE_PAID, INVOICE_ABANDONED = 0, 1, 2, 3


# what this client made itself is remembered this long (and at most this many objects), to spare a read of a
# fact it knows: a new product has no stock and no files, a new document is a draft
RECENT_S: Final = 600.0
RECENT_MAX: Final = 10_000

# how long one listing of the thirdparties made without ps2doli answers e-mail look-ups, and how many look-ups
# within that time make it worth listing them (an initial pass) rather than asking for each e-mail
FOREIGN_S: Final = 60.0
FOREIGN_MIN_LOOKUPS: Final = 5

_PATH_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")
_COUNTRY_CODE = re.compile(r"^[A-Za-z]{2}$")
_FILENAME_UNSAFE = re.compile(r'[/\\:*?"<>|\[\],;=]')


# ----------------------------------------------------------------------------------------------- helpers


def _dec(value: Any, default: Decimal = Decimal(0)) -> Decimal:
    if value is None or value == "":
        return default
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return default


def _collated(text: str) -> str:
    """A text as utf8mb4_unicode_ci compares it: case and accents folded, trailing spaces ignored."""
    decomposed = unicodedata.normalize("NFKD", text.rstrip(" "))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _seg(value: str | int) -> str:
    return quote(str(value), safe="")


def _status_of(raw: Mapping[str, Any]) -> int:
    value = raw.get("statut", raw.get("status"))
    return _int(value, 0)


def _remote(raw: Mapping[str, Any], keep: frozenset[str] | None = None) -> RemoteObject:
    """``keep``: the only fields of the row kept in ``raw`` (a bulk listing keeps what a comparison reads)."""
    status = raw.get("status", raw.get("statut"))
    return RemoteObject(
        id=_int(raw.get("id", raw.get("rowid"))),
        ref=str(raw.get("ref") or ""),
        ref_ext=str(raw.get("ref_ext") or ""),
        status="" if status is None else str(status),
        raw=dict(raw) if keep is None else {k: v for k, v in raw.items() if k in keep},
    )


def _document_totals(answer: Any, doc_id: int) -> DocumentTotals | None:
    """The totals of a document as its validation answered it (the validated object), or None when the answer is
    not that object (304, another shape)."""
    if not isinstance(answer, Mapping) or _int(answer.get("id"), doc_id) != doc_id:
        return None
    if answer.get("total_ttc") in (None, ""):
        return None
    multicurrency = answer.get("multicurrency_total_ttc")
    return DocumentTotals(
        total_ttc=_dec(answer.get("total_ttc")),
        multicurrency_code=str(answer.get("multicurrency_code") or ""),
        multicurrency_total_ttc=None if multicurrency in (None, "") else _dec(multicurrency),
        ref=str(answer.get("ref") or ""),
    )


def _ref_pattern(ref: str) -> str | None:
    """``(t.ref:like:'...')`` for a ref ``sql_eq`` cannot express: each character a filter cannot hold becomes
    LIKE's one-character wildcard ``_`` (the rest escaped), a trailing ``%`` for the trailing spaces ``=``
    ignores. It matches the ref and a few others, which the caller filters out: a narrow listing instead of every
    product (the longest safe prefix is empty for a ref that starts with a parenthesis). Falls back to that prefix
    when the WAF would refuse the pattern."""
    pattern = "".join(
        "_" if char == "'" or _unsafe_char(char) else escape_like(char) for char in ref.rstrip(" ")
    )
    expression = f"(t.ref:like:'{pattern}%')"
    if pattern.strip("_") and not waf_refuses(expression):
        return expression
    prefix = safe_like_prefix("t.ref", ref)
    return sql_like_prefix("t.ref", prefix) if prefix else None


def _unsafe_char(char: str) -> bool:
    try:
        sql_like_prefix("t.ref", char)
    except UnsafeFilterValue:
        return True
    return False


# the step of a unit price as Dolibarr stores it (price2num 'MU', MAIN_MAX_DECIMALS_UNIT = 5)
UNIT_PRICE_STEP = Decimal("0.00001")


def _impacts_body(payload: ProductPayload) -> dict[str, Any]:
    """``PUT /products/variants/{combination}``: the price (tax excluded) and weight impacts, never a percent."""
    return {
        "variation_price": money(payload.variant_price_impact),
        "variation_price_percentage": 0,
        "variation_weight": money(payload.variant_weight_impact),
    }


def _attribute_ref(label: str) -> str:
    folded = re.sub(r"[^A-Z0-9]+", "_", label.upper()).strip("_")
    return (folded or "ATTR")[:30]


def _line_equal(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    fk = existing.get("fk_product")
    return (
        (_int(fk) or None) == wanted.get("fk_product")
        and _dec(existing.get("qty")) == _dec(wanted["qty"])
        and _dec(existing.get("subprice")) == _dec(wanted["subprice"])
        and _dec(existing.get("tva_tx")) == _dec(wanted["tva_tx"])
        and _dec(existing.get("remise_percent")) == _dec(wanted.get("remise_percent", 0))
        and _int(existing.get("product_type")) == wanted["product_type"]
        and str(existing.get("desc") or existing.get("description") or "") == wanted["desc"]
    )


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Recent(Generic[K, V]):
    """A bounded map of what this client made a moment ago: entries older than ``max_age_s`` are not returned,
    the oldest are dropped beyond ``max_len`` (forgetting one only costs the read it would have spared)."""

    def __init__(self, max_age_s: float = RECENT_S, max_len: int = RECENT_MAX) -> None:
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._max_age_s = max_age_s
        self._max_len = max_len

    def put(self, key: K, value: V) -> None:
        now = time.monotonic()
        self._items.pop(key, None)
        self._items[key] = (now, value)
        # oldest first (each put goes last): drop what is too old to be returned, then beyond the length
        while self._items:
            oldest = next(iter(self._items.values()))[0]
            if len(self._items) <= self._max_len and now - oldest <= self._max_age_s:
                break
            self._items.popitem(last=False)

    def get(self, key: K) -> V | None:
        entry = self._items.get(key)
        if entry is None:
            return None
        if time.monotonic() - entry[0] > self._max_age_s:
            del self._items[key]
            return None
        return entry[1]

    def pop(self, key: K) -> V | None:
        value = self.get(key)
        self._items.pop(key, None)
        return value

    def __len__(self) -> int:
        return len(self._items)

    def each(self, action: Callable[[V], object]) -> None:
        for _, value in self._items.values():
            action(value)


@dataclass(slots=True)
class _NewProduct:
    """A product this client created (``POST /products`` or a variant it posted): no stock and no files until
    it moves or uploads some; its ref as Dolibarr stores it ("" when Dolibarr chose it)."""

    ref: str
    no_stock: bool = True
    no_files: bool = True


class _NoLongerDraft(Exception):
    """A document this client created was no longer a draft when it validated it (304): read it, then decide."""


# ------------------------------------------------------------------------------------------------ client


class DolibarrRestClient(RestHttp):
    """:class:`~service.dolibarr.port.DolibarrPort` over Dolibarr's REST API (tested against 20.0.2)."""

    def __init__(
        self,
        settings: DolibarrSettings,
        retry: RetrySettings,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        super().__init__(settings, retry, session)
        self._validate_locks: dict[str, asyncio.Lock] = {"order": asyncio.Lock(), "invoice": asyncio.Lock()}
        # caches
        self._capabilities: Capabilities | None = None
        self._countries: dict[str, int] = {}
        self._currencies: set[str] = set()
        self._payment_types: dict[str, int] | None = None
        self._payment_terms: dict[str, int] | None = None
        self._bank_accounts: list[int] | None = None
        self._warehouses: list[int] | None = None
        self._attributes: dict[str, int] | None = None
        self._attribute_values: dict[int, dict[str, int]] = {}
        self._attribute_value_refs: dict[int, set[str]] = {}
        # variant attributes and values are created once: concurrent variants of one product would each see
        # "Size" missing and post it, and all but one would fail on the duplicate ref
        self._features_lock = asyncio.Lock()
        # one create at a time per product ref: a variant's ref is checked, then posted (see create_variant);
        # a ref's lock lives while someone holds or waits for it (``_ref_lock``), so the map does not grow
        self._ref_locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        # what this client made a moment ago (``_Recent``): products (no stock, no files yet, their ref) and
        # documents (drafts until this client validates them)
        self._new_products: _Recent[int, _NewProduct] = _Recent()
        self._new_drafts: _Recent[tuple[str, int], bool] = _Recent()
        # the thirdparties made without ps2doli, by e-mail, from one listing (find_foreign_thirdparties_by_email)
        self._foreign_thirdparties: _Recent[int, dict[str, list[RemoteObject]]] = _Recent(FOREIGN_S, 1)
        self._foreign_lock = asyncio.Lock()
        self._foreign_asked: deque[float] = deque()  # when e-mails were looked up, the last FOREIGN_S seconds

    # ---------------------------------------------------------------------------------------- listings

    async def _lookup(
        self, kind: str, field: str, value: str, by_path: str | None = None
    ) -> list[dict[str, Any]]:
        """Rows of ``kind`` whose ``field`` equals ``value`` exactly (case, accents and spaces included)."""
        if not value:
            return []
        resource = self._resource(kind)
        value = str(storable(value, self._settings.charset)[0])  # as Dolibarr stored it
        if by_path is not None and _PATH_SAFE.match(value):
            try:
                row = self._dict(
                    await self._call(
                        "GET", f"/{resource}/{by_path}/{_seg(value)}", kind=kind, record_id=value
                    ),
                    self._where(kind, value),
                    by_path,
                )
            except NotFound:
                return []
            if str(row.get(field) or "") == value:
                return [row]
            # the collation matched another spelling: look for the exact one in the list below
        try:
            expression: str | None = sql_eq(f"t.{field}", value)
        except UnsafeFilterValue:
            prefix = safe_like_prefix(f"t.{field}", value)
            expression = sql_like_prefix(f"t.{field}", prefix) if prefix else None
            log.info("dolibarr_lookup_scan", resource=resource, field=field, prefix=prefix)
        rows = await self._list_all(kind, f"/{resource}", sqlfilters=expression)
        return [r for r in rows if str(r.get(field) or "") == value]

    async def find_by_ref_ext(self, kind: ObjectKind, ref_ext: str) -> RemoteObject | None:
        by_path = "ref_ext" if kind in ("product", "order", "invoice") else None
        rows = await self._lookup(kind, "ref_ext", ref_ext, by_path)
        if not rows:
            return None
        rows.sort(key=lambda r: _int(r.get("id")))
        if len(rows) > 1:
            log.warning(
                "dolibarr_duplicate_ref_ext",
                kind=kind,
                ref_ext=ref_ext,
                ids=[_int(r.get("id")) for r in rows],
            )
        return _remote(rows[0])

    async def list_ref_ext(self, kind: ObjectKind, prefix: str) -> dict[str, RemoteObject]:
        resource = self._resource(kind)
        try:
            expression: str | None = sql_like_prefix("t.ref_ext", prefix) if prefix else None
        except UnsafeFilterValue:
            safe = safe_like_prefix("t.ref_ext", prefix)
            expression = sql_like_prefix("t.ref_ext", safe) if safe else None
        rows = await self._list_all(kind, f"/{resource}", sqlfilters=expression)
        found: dict[str, RemoteObject] = {}
        keep = COMPARED_FIELDS.get(kind, frozenset())
        for row in sorted(rows, key=lambda r: _int(r.get("id"))):
            obj = _remote(row, keep)
            if not obj.ref_ext.startswith(prefix):
                continue
            if obj.ref_ext in found:
                # e.g. a variant child still carrying its parent's ref_ext: the older object keeps the name
                log.warning(
                    "dolibarr_duplicate_ref_ext",
                    kind=kind,
                    ref_ext=obj.ref_ext,
                    ids=[found[obj.ref_ext].id, obj.id],
                )
                continue
            found[obj.ref_ext] = obj
        return found

    async def find_product_by_ref(self, ref: str) -> RemoteObject | None:
        rows = await self._lookup("product", "ref", ref, "ref")
        return _remote(min(rows, key=lambda r: _int(r.get("id")))) if rows else None

    async def find_thirdparties_by_email(self, email: str) -> list[RemoteObject]:
        rows = await self._lookup("thirdparty", "email", email)
        return [_remote(r) for r in sorted(rows, key=lambda r: _int(r.get("id")))]

    async def find_foreign_thirdparties_by_email(self, email: str) -> list[RemoteObject]:
        """The thirdparties ps2doli did not make (``ref_ext`` empty or not a shop's ``ps-...``) whose e-mail is
        exactly ``email``, from one paged listing of them all, used for :data:`FOREIGN_S` seconds: an initial
        pass looks up every new customer, one listing instead of one request each. A few look-ups now and then (a
        running service) ask for their e-mail each, as :meth:`find_thirdparties_by_email`: a listing of every
        thirdparty of an ERP (suppliers, prospects...) would cost more, and be older. A thirdparty this client
        updates (adopts) leaves the listing at once."""
        if self._foreign_thirdparties.get(0) is None:
            now = time.monotonic()
            asked = self._foreign_asked
            asked.append(now)
            while now - asked[0] > FOREIGN_S:
                asked.popleft()
            if len(asked) < FOREIGN_MIN_LOOKUPS:
                found = await self.find_thirdparties_by_email(email)
                return [t for t in found if not t.ref_ext.startswith("ps-")]
        async with self._foreign_lock:
            by_email = self._foreign_thirdparties.get(0)
            if by_email is None:
                expression = "((t.ref_ext:is:NULL) or (t.ref_ext:notlike:'ps-%'))"
                rows = await self._list_all("thirdparty", "/thirdparties", sqlfilters=expression)
                by_email = {}
                for row in sorted(rows, key=lambda r: _int(r.get("id"))):
                    obj = _remote(row)
                    if str(row.get("email") or "") and not obj.ref_ext.startswith("ps-"):
                        by_email.setdefault(str(row.get("email")), []).append(obj)
                self._foreign_thirdparties.put(0, by_email)
        return list(by_email.get(str(storable(email, self._settings.charset)[0]), []))

    def _forget_foreign(self, thirdparty_id: int) -> None:
        by_email = self._foreign_thirdparties.get(0)
        for rows in (by_email or {}).values():
            rows[:] = [r for r in rows if r.id != thirdparty_id]

    async def get(self, kind: ObjectKind, object_id: int) -> dict[str, Any]:
        resource = self._resource(kind)
        where = self._where(kind, object_id)
        return self._dict(
            await self._call("GET", f"/{resource}/{object_id}", kind=kind, record_id=object_id), where, kind
        )

    # ------------------------------------------------------------------------------------ create/update

    async def create(self, payload: Payload, ids: Ids) -> int:
        if isinstance(payload, ProductPayload):
            if payload.variant_of is not None:
                parent = self._ref_id(ids, payload.variant_of, payload)
                return await self.create_variant(parent, payload.variant_features, payload, ids)
            async with self._ref_lock(payload.ref):
                new_id = await self._post_new("product", "/products", product_body(payload), payload.ref_ext)
            self._remember_product(new_id, payload.ref)
            exact_price = price_after_create(payload)
            if exact_price is not None:  # the create kept the price to the cent only
                await self._put("product", new_id, exact_price)
            return new_id
        if isinstance(payload, ThirdpartyPayload):
            country = await self._country_id(payload.country_code, payload.ref_ext)
            return await self._post_new(
                "thirdparty", "/thirdparties", thirdparty_body(payload, country), payload.ref_ext
            )
        if isinstance(payload, ContactPayload):
            socid = self._ref_id(ids, payload.thirdparty, payload)
            country = await self._country_id(payload.country_code, payload.ref_ext)
            return await self._post_new(
                "contact", "/contacts", contact_body(payload, socid, country), payload.ref_ext
            )
        if isinstance(payload, CategoryPayload):
            parent_id = self._ref_id(ids, payload.parent, payload) if payload.parent else None
            try:
                new_id = await self._post_new(
                    "category", "/categories", category_body(payload, parent_id), payload.ref_ext
                )
            except CategoryAlreadyExists:
                adopted = await self._unclaimed_category(payload, parent_id)
                if adopted is None:
                    raise
                new_id = adopted
            # Categorie::create may leave ref_ext out of its INSERT (it is not in the 20.0.2 captures);
            # Categorie::update writes it, so set it again: a category is found by ref_ext only.
            await self._put("category", new_id, {"ref_ext": payload.ref_ext})
            return new_id
        if isinstance(payload, DocumentPayload):
            return await self._create_document(payload, ids)
        raise PermanentError(f"cannot create a {type(payload).__name__} over REST", where=self._where("?"))

    async def _unclaimed_category(self, payload: CategoryPayload, parent_id: int | None) -> int | None:
        """The category Dolibarr says already exists (same label, same parent), when no other ref_ext claims
        it: an earlier create of ours whose answer or ref_ext update was lost."""
        try:
            expression: str | None = sql_eq("t.label", payload.label)
        except UnsafeFilterValue:
            expression = None
        rows = await self._list_all(
            "category", "/categories", sqlfilters=expression, extra={"type": payload.type}
        )
        for row in rows:
            same_label = str(row.get("label") or "").casefold() == payload.label.casefold()
            same_parent = _int(row.get("fk_parent")) == (parent_id or 0)
            if same_label and same_parent and str(row.get("ref_ext") or "") in ("", payload.ref_ext):
                log.warning("dolibarr_category_adopted", id=row.get("id"), ref_ext=payload.ref_ext)
                return _int(row.get("id"))
        return None

    async def update(self, object_id: int, payload: Payload, ids: Ids) -> None:
        if isinstance(payload, DocumentPayload):
            await self._update_document(object_id, payload, ids)
            return
        if isinstance(payload, ProductPayload):
            new = self._new_products.get(object_id)
            if new is not None and new.ref != payload.ref:
                new.ref = ""  # renamed: read the ref back when it names a folder
        elif isinstance(payload, ThirdpartyPayload):
            self._forget_foreign(object_id)  # it gets a ref_ext of ours: adopted once
        body = await self._update_body(payload, ids)
        if body is None:
            raise PermanentError(
                f"cannot update a {type(payload).__name__} over REST", where=self._where("?")
            )
        await self._put(payload.kind, object_id, body)

    async def _update_body(self, payload: Payload, ids: Ids) -> dict[str, Any] | None:
        """The body of ``PUT /{resource}/{id}`` that brings an object in line with ``payload`` (None: a payload
        that is not updated by one PUT)."""
        if isinstance(payload, ProductPayload):
            return product_body(payload, update=True)
        if isinstance(payload, ThirdpartyPayload):
            country = await self._country_id(payload.country_code, payload.ref_ext)
            return thirdparty_body(payload, country)
        if isinstance(payload, ContactPayload):
            socid = self._ref_id(ids, payload.thirdparty, payload)
            country = await self._country_id(payload.country_code, payload.ref_ext)
            return contact_body(payload, socid, country)
        if isinstance(payload, CategoryPayload):
            parent_id = self._ref_id(ids, payload.parent, payload) if payload.parent else None
            return category_body(payload, parent_id)
        return None

    async def unchanged_parts(self, found: RemoteObject, payload: Payload, ids: Ids) -> frozenset[Part]:
        """``core``: the row ``found`` carries (a listing's or a GET's fields, ``rest_compare.py``) holds every
        field of the PUT :meth:`update` would send, as the connection stores text; ``variant``: the parent's
        combination already has the payload's impacts (one GET of the parent's variants)."""
        if isinstance(payload, DocumentPayload) or not found.raw:
            return frozenset()
        body = await self._update_body(payload, ids)
        if body is None:
            return frozenset()
        parts: set[Part] = set()
        differ = differing_fields(payload.kind, storable(body, self._settings.charset)[0], found.raw)
        if differ:
            log.debug("dolibarr_differs", kind=payload.kind, id=found.id, fields=differ)  # names, no values
        else:
            parts.add("core")
        if (
            isinstance(payload, ProductPayload)
            and payload.variant_of is not None
            and payload.variant_of in ids
        ):
            combination = await self._combination(ids[payload.variant_of], found.id)
            if combination is not None and body_held("variant", _impacts_body(payload), combination):
                parts.add("variant")
        return frozenset(parts)

    def _ref_id(self, ids: Ids, ref: Ref | None, payload: object) -> int:
        if ref is None or ref not in ids:
            kind = getattr(payload, "kind", "?")
            raise PermanentError(
                f"the engine did not resolve {ref.kind if ref else '?'} {ref.ref_ext if ref else ''} "
                "to a Dolibarr id",
                where=self._where(kind, getattr(payload, "ref_ext", "")),
            )
        return ids[ref]

    async def _post_new(self, kind: str, path: str, body: dict[str, Any], record_id: str) -> int:
        answer = await self._call("POST", path, kind=kind, record_id=record_id, body=body)
        return self._new_id(answer, self._where(kind, record_id), f"POST {path}")

    async def _put(self, kind: str, object_id: int, body: dict[str, Any]) -> None:
        resource = self._resource(kind)
        await self._call("PUT", f"/{resource}/{object_id}", kind=kind, record_id=object_id, body=body)

    async def delete(self, kind: ObjectKind, object_id: int) -> None:
        resource = self._resource(kind)
        if kind == "product":
            self._new_products.pop(object_id)
        elif kind in ("order", "invoice"):
            self._new_drafts.pop((kind, object_id))
        try:
            await self._call("DELETE", f"/{resource}/{object_id}", kind=kind, record_id=object_id)
        except NotFound:
            log.info("dolibarr_delete_already_gone", kind=kind, id=object_id)

    async def set_active(self, kind: ObjectKind, object_id: int, active: bool) -> None:
        """Status on or off, written only when it is not already so (a customer soft-deleted before the first
        sync was created inactive: retiring it costs a read, not a write)."""
        flag = 1 if active else 0
        fields = STATUS_FIELDS.get(kind)
        if fields is not None:
            current = await self.get(kind, object_id)
            if all(_int(current.get(name), -1) == flag for name in fields):
                return
            await self._put(kind, object_id, dict.fromkeys(fields, flag))
        elif kind == "category":
            log.info("dolibarr_category_has_no_status", id=object_id)
        else:
            raise PermanentError(
                f"a Dolibarr {kind} cannot be deactivated", where=self._where(kind, object_id)
            )

    # ------------------------------------------------------------------------------------------ setup

    async def _country_id(self, code: str, record_id: str = "") -> int | None:
        if not code:
            return None
        code = code.upper()
        if code in self._countries:
            return self._countries[code]
        where = self._where("country", code)
        if not _COUNTRY_CODE.match(code):
            raise PermanentError(f"{code!r} is not a two-letter ISO country code", where=where)
        try:
            row = self._dict(
                await self._call(
                    "GET", f"/setup/dictionary/countries/byCode/{code}", kind="country", record_id=code
                ),
                where,
                "country",
            )
        except NotFound:
            raise PermanentError(
                f"Dolibarr's country dictionary has no country {code} (for {record_id})", where=where
            ) from None
        self._countries[code] = _int(row.get("id"))
        return self._countries[code]

    async def extrafields(self, elementtype: str) -> dict[str, dict[str, Any]]:
        where = self._where("extrafields", elementtype)
        try:
            answer = await self._call(
                "GET",
                "/setup/extrafields",
                kind="extrafields",
                record_id=elementtype,
                params={"elementtype": elementtype},
            )
        except NotFound:
            return {}
        if answer == []:
            return {}  # no extrafield at all: PHP encodes the empty array as a list
        data = self._dict(answer, where, "extrafields")
        found = data.get(elementtype, {})
        return {str(k): dict(v) for k, v in found.items()} if isinstance(found, dict) else {}

    async def payment_type_ids(self) -> dict[str, int]:
        if self._payment_types is None:
            rows = await self._list_all(
                "payment_type", "/setup/dictionary/payment_types", sortfield="code", extra={"active": 1}
            )
            self._payment_types = {str(r.get("code")): _int(r.get("id")) for r in rows if r.get("code")}
        return dict(self._payment_types)

    async def bank_account_ids(self) -> list[int]:
        if self._bank_accounts is None:
            rows = await self._list_all("bank_account", "/bankaccounts")
            self._bank_accounts = [
                _int(r.get("id")) for r in rows if str(r.get("clos", "0")) in ("0", "", "None")
            ]
        return list(self._bank_accounts)

    async def warehouse_ids(self) -> list[int]:
        if self._warehouses is None:
            rows = await self._list_all("warehouse", "/warehouses")
            self._warehouses = [_int(r.get("id")) for r in rows if str(r.get("statut", "1")) != "0"]
        return list(self._warehouses)

    async def _payment_term(self, code: str, record_id: str) -> int | None:
        """A payment term code (``RECEP``, ``30D``...) -> its dictionary id; "" -> None (the thirdparty's)."""
        if not code:
            return None
        if self._payment_terms is None:
            rows = await self._list_all(
                "payment_term", "/setup/dictionary/payment_terms", sortfield="code", extra={"active": 1}
            )
            self._payment_terms = {str(r.get("code")): _int(r.get("id")) for r in rows if r.get("code")}
        if code not in self._payment_terms:
            raise PermanentError(
                f"payment term {code!r} is not in Dolibarr's payment terms dictionary "
                f"({', '.join(sorted(self._payment_terms))})",
                where=self._where("payment_term", record_id),
            )
        return self._payment_terms[code]

    async def _mode_reglement(self, code: str, record_id: str) -> int | None:
        if not code:
            return None
        types = await self.payment_type_ids()
        if code not in types:
            raise PermanentError(
                f"payment type {code!r} is not in Dolibarr's payment types dictionary "
                f"({', '.join(sorted(types))})",
                where=self._where("payment_type", record_id),
            )
        return types[code]

    # --------------------------------------------------------------------------------- capabilities

    async def capabilities(self) -> Capabilities:
        if self._capabilities is not None:
            return self._capabilities
        where = self._where("status")
        status = self._dict(await self._call("GET", "/status", kind="status"), where, "status")
        success = status.get("success", status)
        version = str(success.get("dolibarr_version", "")) if isinstance(success, dict) else ""
        modules = await self._enabled_modules()
        flags = {
            name: (module in modules) if modules is not None else await self._probe(path)
            for name, module, path in MODULE_PROBES
        }
        self._capabilities = Capabilities(
            version=version,
            categories=flags["categories"],
            variants=flags["variants"],
            stock=flags["stock"],
            documents=True,
            payments=flags["payments"],
            multicurrency=flags["multicurrency"],
            main_currency=await self._main_currency(),
            modules_known=modules is not None,
        )
        log.info("dolibarr_capabilities", **{k: v for k, v in self._capabilities.__dict__.items()})
        return self._capabilities

    async def _enabled_modules(self) -> frozenset[str] | None:
        """The modules Dolibarr has on (``GET /setup/modules``), or None when the key may not ask (admins only,
        or a login named by API_LOGINS_ALLOWED_FOR_GET_MODULES)."""
        try:
            value = await self._call("GET", "/setup/modules", kind="setup")
        except (ConfigError, PermanentError, NotFound):
            return None
        if not isinstance(value, list):
            return None
        return frozenset(str(v).lower() for v in value)

    async def _probe(self, path: str) -> bool:
        """Whether a module's route can be used, when the module list cannot be read: Dolibarr loads every API
        class whether its module is on or off, and a module that is off has no rights to grant, so its routes
        answer 403 ("Insufficient rights ..."), exactly as for a key without the permission: both mean the
        feature cannot be used (``ps2doli check`` says which permission or module to look at). 501 means an
        unknown route (Dolibarr too old)."""
        try:
            await self._call("GET", path, kind="probe", params={"limit": 1})
        except NotFound:
            return True
        except ConfigError as exc:
            if exc.status in (403, 501):
                return False
            raise
        except PermanentError as exc:
            if exc.status == 403:
                return False
            raise
        return True

    async def _main_currency(self) -> str:
        try:
            value = await self._call("GET", "/setup/conf/MAIN_MONNAIE", kind="setup")
            if isinstance(value, str) and re.fullmatch(r"[A-Z]{3}", value):
                return value
        except (ConfigError, PermanentError, NotFound, BadResponse):
            pass  # not an admin key: guess from the bank accounts
        try:
            rows = await self._list_all("bank_account", "/bankaccounts")
        except (ConfigError, PermanentError):
            rows = []
        for row in rows:
            code = str(row.get("currency_code") or "")
            if re.fullmatch(r"[A-Z]{3}", code):
                return code
        return "EUR"

    async def check_access(self) -> list[str]:
        problems: list[str] = []
        try:
            await self._call("GET", "/status", kind="status")
        except ConfigError as exc:
            return [exc.message]
        except SyncError as exc:
            return [f"cannot talk to Dolibarr at {self._base}: {exc.message}"]
        areas: Sequence[tuple[str, str, str, dict[str, Any]]] = (
            ("products", "/products", "Products / Services", {}),
            ("categories", "/categories", "Categories", {}),
            ("thirdparties", "/thirdparties", "Third parties", {}),
            ("contacts", "/contacts", "Third parties (contacts)", {}),
            ("sales orders", "/orders", "Sales orders", {}),
            ("invoices", "/invoices", "Invoices", {}),
            ("warehouses", "/warehouses", "Stocks", {}),
            ("bank accounts", "/bankaccounts", "Banks and cash", {}),
            ("payment types", "/setup/dictionary/payment_types", "Invoices", {}),
            ("product variants", "/products/attributes", "Variants of products", {}),
            ("extrafields", "/setup/extrafields", "(admin users only)", {"elementtype": "product"}),
        )
        for area, path, module, extra in areas:
            try:
                await self._call("GET", path, kind="check", params={"limit": 1, **extra})
            except NotFound:
                continue
            except ConfigError as exc:
                if exc.status == 401:
                    return [exc.message]
                if exc.status == 501:
                    problems.append(
                        f"Dolibarr has no {area} API (GET {path} is unknown): enable the {module} module"
                    )
                elif exc.status == 403:
                    problems.append(
                        f"the Dolibarr user behind the API key may not read {area} (HTTP 403): "
                        f"give it the read permission of {module}"
                    )
                else:
                    problems.append(f"{area}: {exc.message}")
            except SyncError as exc:
                problems.append(f"{area}: {exc.message}")
        return problems

    # ------------------------------------------------------------------------------------- categories

    async def object_categories(self, kind: ObjectKind, object_id: int) -> set[int]:
        if kind not in CATEGORY_OBJECT_TYPES:
            raise PermanentError(f"a Dolibarr {kind} has no categories", where=self._where(kind, object_id))
        resource = self._resource(kind)
        try:
            answer = await self._call(
                "GET", f"/{resource}/{object_id}/categories", kind=kind, record_id=object_id
            )
        except NotFound:
            return set()
        if answer in (0, "0", None, False, ""):
            return set()  # Dolibarr 20 answers a bare 0 (HTTP 200) for an object in no category
        rows = self._list(answer, self._where(kind, object_id), "categories")
        return {_int(r.get("id")) for r in rows}

    async def link_category(self, category_id: int, kind: ObjectKind, object_id: int) -> None:
        if kind == "thirdparty":
            await self._call(
                "PUT", f"/thirdparties/{object_id}/categories/{category_id}", kind=kind, record_id=object_id
            )
            return
        object_type = self._category_type(kind, object_id)
        await self._call(
            "POST",
            f"/categories/{category_id}/objects/{object_type}/{object_id}",
            kind=kind,
            record_id=object_id,
            idempotent=True,  # linking twice answers 200 (captured)
        )

    async def unlink_category(self, category_id: int, kind: ObjectKind, object_id: int) -> None:
        try:
            if kind == "thirdparty":
                await self._call(
                    "DELETE",
                    f"/thirdparties/{object_id}/categories/{category_id}",
                    kind=kind,
                    record_id=object_id,
                )
                return
            object_type = self._category_type(kind, object_id)
            await self._call(
                "DELETE",
                f"/categories/{category_id}/objects/{object_type}/{object_id}",
                kind=kind,
                record_id=object_id,
            )
        except NotFound:
            log.info("dolibarr_category_link_already_gone", kind=kind, id=object_id, category=category_id)

    def _category_type(self, kind: str, object_id: int) -> str:
        try:
            return CATEGORY_OBJECT_TYPES[kind]
        except KeyError:
            raise PermanentError(
                f"a Dolibarr {kind} cannot be put in a category", where=self._where(kind, object_id)
            ) from None

    async def category_objects(self, category_id: int, kind: ObjectKind) -> set[int]:
        object_type = self._category_type(kind, category_id)
        try:
            rows = self._list(
                await self._call(
                    "GET",
                    f"/categories/{category_id}/objects",
                    kind="category",
                    record_id=category_id,
                    params={"type": object_type},
                ),
                self._where("category", category_id),
                "category objects",
            )
        except NotFound:
            return set()
        return {_int(r.get("id")) for r in rows}

    # ---------------------------------------------------------------------------------------- variants

    async def _attribute_id(self, label: str) -> int:
        key = label.strip().casefold()
        if self._attributes is None:
            rows = await self._list_all("attribute", "/products/attributes")
            self._attributes = {str(r.get("label") or "").strip().casefold(): _int(r.get("id")) for r in rows}
        if key not in self._attributes:
            body = {"ref": _attribute_ref(label), "label": label}
            try:
                new_id = await self._post_new("attribute", "/products/attributes", body, label)
            except AmbiguousWrite:
                self._attributes = None  # it may exist now: read the list again next time
                raise
            self._attributes[key] = new_id
        return self._attributes[key]

    async def _attribute_value_id(self, attribute_id: int, label: str) -> int:
        key = label.strip().casefold()
        values = self._attribute_values.get(attribute_id)
        refs = self._attribute_value_refs.setdefault(attribute_id, set())
        if values is None:
            try:
                rows = self._list(
                    await self._call(
                        "GET",
                        f"/products/attributes/{attribute_id}/values",
                        kind="attribute",
                        record_id=attribute_id,
                    ),
                    self._where("attribute", attribute_id),
                    "attribute values",
                )
            except NotFound:
                rows = []
            values = {str(r.get("value") or "").strip().casefold(): _int(r.get("id")) for r in rows}
            refs.update(str(r.get("ref") or "").casefold() for r in rows)
            self._attribute_values[attribute_id] = values
        if key not in values:
            ref = _attribute_ref(label)
            suffix = 2
            while ref.casefold() in refs:  # value refs must be unique within the attribute
                ref = f"{_attribute_ref(label)[:27]}_{suffix}"
                suffix += 1
            body = {"ref": ref, "value": label}
            path = f"/products/attributes/{attribute_id}/values"
            try:
                values[key] = await self._post_new("attribute", path, body, label)
            except AmbiguousWrite:
                self._attribute_values.pop(attribute_id, None)  # it may exist now: read again next time
                raise
            refs.add(ref.casefold())
        return values[key]

    async def _existing_combination(
        self, parent_id: int, features: Mapping[str, int], ref_ext: str
    ) -> int | None:
        try:
            rows = self._list(
                await self._call(
                    "GET", f"/products/{parent_id}/variants", kind="product", record_id=parent_id
                ),
                self._where("product", parent_id),
                "variants",
            )
        except NotFound:
            return None
        wanted = {(int(a), v) for a, v in features.items()}
        for row in rows:
            pairs = {
                (_int(p.get("fk_prod_attr")), _int(p.get("fk_prod_attr_val")))
                for p in row.get("attributes") or []
                if isinstance(p, dict)
            }
            if (ref_ext and row.get("variation_ref_ext") == ref_ext) or pairs == wanted:
                return _int(row.get("fk_product_child")) or None
        return None

    async def create_variant(
        self, parent_id: int, features: tuple[tuple[str, str], ...], payload: Payload, ids: Ids
    ) -> int:
        if not isinstance(payload, ProductPayload):
            raise PermanentError("a variant needs a product payload", where=self._where("product", parent_id))
        where = self._where("product", payload.ref_ext)
        if not features:
            raise PermanentError("a variant needs at least one (attribute, value) feature", where=where)
        feature_ids: dict[str, int] = {}
        async with self._features_lock:
            for attribute, value in features:
                attribute_id = await self._attribute_id(attribute)
                feature_ids[str(attribute_id)] = await self._attribute_value_id(attribute_id, value)
        child_id = await self._existing_combination(parent_id, feature_ids, payload.ref_ext)
        if child_id is None:
            # one variant of a parent at a time: createProductCombination of two children of one parent in
            # parallel deadlocks in MariaDB (a bare 500 "Error creating new product variant", rolled back)
            async with self._ref_lock(f"\0variants of {parent_id}"), self._ref_lock(payload.ref):
                child_id = await self._post_variant(parent_id, feature_ids, payload)
            self._remember_product(child_id, payload.ref)
        # Dolibarr 20.0.2 copies the parent's ref_ext onto the child: give the child its own (see quirks).
        await self._put("product", child_id, product_body(payload, update=True))
        return child_id

    def _remember_product(self, product_id: int, ref: str) -> None:
        """A product this client just created: its ref when Dolibarr keeps it as sent (the mapper asks for the
        stored form, ``refs.py``; anything else is read back when needed)."""
        kept = (
            bool(ref)
            and stored_product_ref(ref) == ref
            and self._storable(ref, self._where("product")) == ref
        )
        self._new_products.put(product_id, _NewProduct(ref=ref if kept else ""))

    async def _ref_taken(self, ref: str) -> bool:
        """Whether a product holds ``ref`` as Dolibarr's unique key sees it: its collation ignores case, accents
        and trailing spaces, so ``REF-1`` is taken by ``ref-1`` (unlike :meth:`find_product_by_ref`, exact)."""
        if _PATH_SAFE.match(ref):
            try:
                await self._call("GET", f"/products/ref/{_seg(ref)}", kind="product", record_id=ref)
            except NotFound:
                return False
            return True
        expression: str | None
        try:
            expression = sql_eq("t.ref", ref)
        except UnsafeFilterValue:
            expression = _ref_pattern(ref)
        rows = await self._list_all("product", "/products", sqlfilters=expression)
        return any(_collated(str(r.get("ref") or "")) == _collated(ref) for r in rows)

    @contextlib.asynccontextmanager
    async def _ref_lock(self, ref: str) -> AsyncIterator[None]:
        """One holder at a time per ref (spaces and case folded); the lock is dropped when nobody holds or
        waits for it."""
        key = " ".join(ref.split()).casefold()
        lock, users = self._ref_locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._ref_locks[key]

    async def _post_variant(
        self, parent_id: int, feature_ids: dict[str, int], payload: ProductPayload
    ) -> int:
        where = self._where("product", payload.ref_ext)
        if payload.ref and await self._ref_taken(payload.ref):
            # createProductCombination takes the product holding this ref as the new child (20.x), or fails
            # with a bare 500: the ref is taken, the engine picks the next one
            raise RefAlreadyExists(
                f"the ref {payload.ref!r} is already used by another Dolibarr product", where=where
            )
        if payload.variant_price_impact or payload.variant_weight_impact:
            price_impact = payload.variant_price_impact
            weight_impact = payload.variant_weight_impact
        else:
            parent = await self.get("product", parent_id)
            price_impact = payload.price - _dec(parent.get("price"))
            if abs(price_impact) < UNIT_PRICE_STEP:
                # the parent holds the price as Dolibarr rounds a unit price (5 decimals): no impact, else a
                # 0.000003 impact that the payload (impact 0) never matches again (a PUT after a lost state)
                price_impact = Decimal(0)
            weight_impact = (
                payload.weight - _dec(parent.get("weight")) if payload.weight is not None else Decimal(0)
            )
        body = {
            "weight_impact": quantity(weight_impact),
            "price_impact": quantity(price_impact),
            "price_impact_is_percent": False,
            "features": feature_ids,
            "reference": payload.ref,
            "ref_ext": payload.ref_ext,
        }
        return await self._post_new("product", f"/products/{parent_id}/variants", body, payload.ref_ext)

    async def _combination(self, parent_id: int, child_id: int) -> dict[str, Any] | None:
        """The combination of ``parent_id`` whose child is ``child_id`` (``GET /products/{id}/variants``)."""
        try:
            rows = self._list(
                await self._call(
                    "GET", f"/products/{parent_id}/variants", kind="product", record_id=parent_id
                ),
                self._where("product", parent_id),
                "variants",
            )
        except NotFound:
            rows = []
        return next((r for r in rows if _int(r.get("fk_product_child")) == child_id), None)

    async def update_variant(self, parent_id: int, child_id: int, payload: Payload, ids: Ids) -> None:
        """``PUT /products/variants/{combination}`` with the impacts: ``ProductCombination::update`` then
        computes the child's price and weight again from the parent's (``updateProperties``), as every save of
        the parent does. The combination is found in the parent's variant list by its child."""
        if not isinstance(payload, ProductPayload):
            raise PermanentError("a variant needs a product payload", where=self._where("product", parent_id))
        combination = await self._combination(parent_id, child_id)
        if combination is None:
            raise PermanentError(
                f"product {child_id} is not a variant of product {parent_id} in Dolibarr",
                where=self._where("product", payload.ref_ext),
            )
        body = _impacts_body(payload)
        await self._call(
            "PUT",
            f"/products/variants/{_int(combination.get('id'))}",
            kind="product",
            record_id=payload.ref_ext,
            body=body,
        )

    # --------------------------------------------------------------------------------------- documents

    async def _document_header(
        self, doc: DocumentPayload, ids: Ids
    ) -> tuple[int, int | None, tuple[str, Decimal | None] | None]:
        socid = self._ref_id(ids, doc.thirdparty, doc)
        mode = await self._mode_reglement(doc.payment_type, doc.ref_ext)
        multicurrency: tuple[str, Decimal | None] | None = None
        if doc.currency:
            caps = await self.capabilities()
            if doc.currency.upper() != caps.main_currency.upper():
                if not caps.multicurrency:
                    raise ConfigError(
                        f"{doc.kind} {doc.ref_ext} is in {doc.currency} but Dolibarr's main currency is "
                        f"{caps.main_currency} and the Multicurrency module is off",
                        where=self._where(doc.kind, doc.ref_ext),
                    )
                await self._ensure_currency(doc.currency.upper(), doc.currency_rate, doc.ref_ext)
                multicurrency = (doc.currency.upper(), doc.currency_rate)
        return socid, mode, multicurrency

    async def _ensure_currency(self, code: str, rate: Decimal | None, record_id: str) -> None:
        """A document in ``code`` needs the currency in Dolibarr's list: without it Dolibarr silently keeps the
        main currency (the amounts divided by the rate, in EUR). Added once, with the order's rate, when the key
        may (``multicurrency currency write``); otherwise a failure saying what to add."""
        if code in self._currencies:
            return
        async with self._features_lock:
            if code in self._currencies:
                return
            where = self._where("currency", record_id)
            known = {
                str(r.get("code") or "").upper()
                for r in await self._list_all(
                    "currency", "/multicurrencies", sqlfilters=sql_eq("t.code", code)
                )
            }
            if code not in known:
                body: dict[str, Any] = {"code": code, "name": code}
                if rate is not None and rate > 0:
                    body["rate"] = money(rate)
                try:
                    await self._call("POST", "/multicurrencies", kind="currency", record_id=code, body=body)
                except (ConfigError, PermanentError) as exc:
                    raise PermanentError(
                        f"Dolibarr does not know the currency {code} and the API key could not add it "
                        f"({exc.message}): add it in Setup > Modules > Multicurrency > currencies (code {code}, "
                        f"rate {rate}) and retry",
                        where=where,
                    ) from None
                log.info("dolibarr_currency_added", code=code, rate=str(rate))
            self._currencies.add(code)

    def _lines(self, doc: DocumentPayload, ids: Ids) -> list[dict[str, Any]]:
        return [
            line_body(line, self._ref_id(ids, line.product, doc) if line.product else None)
            for line in doc.lines
        ]

    async def _create_document(self, doc: DocumentPayload, ids: Ids) -> int:
        resource = self._resource(doc.kind)
        socid, mode, multicurrency = await self._document_header(doc, ids)
        body = document_body(
            doc,
            socid=socid,
            mode_reglement_id=mode,
            multicurrency=multicurrency,
            lines=self._lines(doc, ids),  # lines inside the create: one transaction, one non-idempotent call
            order_id=ids.get(doc.order) if doc.order else None,
            credit_note_of=self._ref_id(ids, doc.credit_note_of, doc) if doc.credit_note_of else None,
            cond_reglement_id=await self._payment_term(doc.payment_terms, doc.ref_ext),
        )
        new_id = await self._post_new(doc.kind, f"/{resource}", body, doc.ref_ext)
        self._new_drafts.put((doc.kind, new_id), True)  # Dolibarr creates every order and invoice as a draft
        await self._link_contacts(doc, new_id, ids)
        return new_id

    async def _link_contacts(self, doc: DocumentPayload, doc_id: int, ids: Ids) -> None:
        resource = self._resource(doc.kind)
        for ref, role in ((doc.billing_contact, "BILLING"), (doc.shipping_contact, "SHIPPING")):
            if ref is None or ref not in ids:
                continue
            try:
                await self._call(
                    "POST",
                    f"/{resource}/{doc_id}/contact/{ids[ref]}/{role}",
                    kind=doc.kind,
                    record_id=doc.ref_ext,
                    idempotent=True,
                )
            except SyncError as exc:  # the document exists: a missing contact link must not hide it
                log.warning(
                    "dolibarr_contact_link_failed", kind=doc.kind, id=doc_id, role=role, error=exc.message
                )

    async def _update_document(self, doc_id: int, doc: DocumentPayload, ids: Ids) -> None:
        resource = self._resource(doc.kind)
        current = await self.get(doc.kind, doc_id)
        if _status_of(current) != 0:
            raise PermanentError(
                f"{doc.kind} {current.get('ref') or doc_id} is no longer a draft: "
                "Dolibarr only lets drafts change",
                where=self._where(doc.kind, doc.ref_ext),
            )
        socid, mode, multicurrency = await self._document_header(doc, ids)
        header = document_body(
            doc,
            socid=socid,
            mode_reglement_id=mode,
            multicurrency=multicurrency,
            lines=None,
            cond_reglement_id=await self._payment_term(doc.payment_terms, doc.ref_ext),
        )
        header.pop("socid")
        await self._call("PUT", f"/{resource}/{doc_id}", kind=doc.kind, record_id=doc.ref_ext, body=header)
        await self._replace_lines(doc.kind, doc_id, self._lines(doc, ids), doc.ref_ext)

    async def _replace_lines(
        self, kind: DocumentKind, doc_id: int, wanted: list[dict[str, Any]], record: str
    ) -> None:
        """Make the draft's lines equal ``wanted``: nothing when they already are, else delete all, re-add."""
        resource = self._resource(kind)
        existing = await self.document_lines(kind, doc_id)
        if len(existing) == len(wanted) and all(
            _line_equal(e, w) for e, w in zip(existing, wanted, strict=True)
        ):
            return
        for line in existing:
            line_id = _int(line.get("id", line.get("rowid")))
            with contextlib.suppress(NotFound):
                await self._call(
                    "DELETE", f"/{resource}/{doc_id}/lines/{line_id}", kind=kind, record_id=record
                )
        for body in wanted:
            await self._call("POST", f"/{resource}/{doc_id}/lines", kind=kind, record_id=record, body=body)

    async def document_lines(self, kind: DocumentKind, doc_id: int) -> list[dict[str, Any]]:
        resource = self._resource(kind)
        try:
            answer = await self._call("GET", f"/{resource}/{doc_id}/lines", kind=kind, record_id=doc_id)
        except NotFound:
            return []
        return self._list(answer, self._where(kind, doc_id), "lines")

    async def set_document_status(
        self, kind: DocumentKind, doc_id: int, status: DocumentStatus, *, warehouse_id: int = 0
    ) -> DocumentTotals | None:
        """The document's status is read first, except for a document this client created a moment ago and has
        not moved since (a draft: no read). Its validation then proves it: Dolibarr answers the validated object,
        or 304 when it was no longer a draft (validated by hand meanwhile), and then the status is read and the
        move decided from it, as for any other document. The validated object's totals are handed back (Dolibarr
        20's ``validate`` fetches the document again and answers it: its totals are those a read would give)."""
        if warehouse_id > 0:
            # a validation (or its undoing) with a warehouse moves stock: no product is known stockless any more
            self._new_products.each(lambda new: setattr(new, "no_stock", False))
        validated: list[DocumentTotals] = []
        if self._new_drafts.pop((kind, doc_id)):
            try:
                await self._move_status(
                    kind, doc_id, status, 0, warehouse_id, trusted=True, validated=validated
                )
                return validated[0] if validated else None
            except _NoLongerDraft:
                log.info("dolibarr_draft_moved_meanwhile", kind=kind, id=doc_id)
        current = _status_of(await self.get(kind, doc_id))
        await self._move_status(
            kind, doc_id, status, current, warehouse_id, trusted=False, validated=validated
        )
        return validated[0] if validated else None

    async def _move_status(
        self,
        kind: DocumentKind,
        doc_id: int,
        status: DocumentStatus,
        current: int,
        warehouse_id: int,
        *,
        trusted: bool,
        validated: list[DocumentTotals],
    ) -> None:
        """From ``current`` to ``status``; ``trusted``: ``current`` is a draft this client created, not read.
        ``validated`` receives the totals of the validated object when this move validates it."""
        resource = self._resource(kind)
        where = self._where(kind, doc_id)

        async def action(name: str, body: dict[str, Any]) -> Any:
            return await self._call(
                "POST",
                f"/{resource}/{doc_id}/{name}",
                kind=kind,
                record_id=doc_id,
                body=body,
                idempotent=True,
            )

        async def validate() -> None:
            async with self._validate_locks[kind]:  # Dolibarr hands out the next number racily
                answer = await action("validate", {"idwarehouse": warehouse_id, "notrigger": 0})
            if trusted and answer is None:  # 304: not a draft any more, although this client made it one
                raise _NoLongerDraft
            totals = _document_totals(answer, doc_id)
            if totals is not None:
                validated.append(totals)

        if status == "draft":
            if current != 0:
                await action("settodraft", {"idwarehouse": warehouse_id or -1})
            return
        if kind == "order":
            if current == ORDER_CANCELED:
                if status == "cancelled":
                    return  # cancelled by hand in Dolibarr, as the error below asks
                raise PermanentError(
                    "the order is cancelled in Dolibarr; it cannot change status", where=where
                )
            if status == "cancelled":
                # Dolibarr 20's api_orders has no cancel route (validate, close, reopen, setinvoiced,
                # settodraft). A PUT of the status field is written as it is by Commande::update (fk_statut),
                # without the ORDER_CANCEL trigger: no stock is put back (the catalog mirrors stock anyway).
                # A cancelled order keeps a number: a draft is validated first, as in the back office.
                if current == ORDER_DRAFT:
                    await validate()
                await self._put(kind, doc_id, {"statut": ORDER_CANCELED})
                return
            if current == ORDER_DRAFT:
                await validate()
                current = ORDER_VALIDATED
            if status in ("validated", "shipped"):
                if current == ORDER_CLOSED:
                    await action("reopen", {})
                return
            if status == "closed" and current != ORDER_CLOSED:
                await action("close", {"notrigger": 0})
            return
        # invoices
        if current == INVOICE_ABANDONED:
            if status == "cancelled":
                return
            raise PermanentError("the invoice is abandoned in Dolibarr; it cannot change status", where=where)
        if status == "cancelled":
            raise PermanentError(
                "Dolibarr 20's REST API has no route to abandon an invoice (api_invoices: validate, "
                "settodraft, settopaid, settounpaid only): issue a credit note or abandon it in Dolibarr",
                where=where,
            )
        if current == INVOICE_DRAFT:
            await validate()
            current = INVOICE_VALIDATED
        if status in ("validated", "shipped") and current == INVOICE_PAID:
            await action("settounpaid", {})
        elif status == "closed" and current != INVOICE_PAID:
            await action("settopaid", {})

    async def invoice_from_order(self, order_id: int, payload: DocumentPayload, ids: Ids) -> int:
        """The order's invoice: ``POST /invoices`` with its lines, its currency and ``linked_objects``
        ``{"commande": order}`` (Facture::create links it as createFromOrder would). One atomic call, where
        ``POST /invoices/createfromorder/{id}`` would need a header ``PUT`` and the lines replaced one by one -
        and createFromOrder drops the order's currency (20.0.2: a USD order's invoice came out in EUR). Not
        idempotent: the engine looks it up by ``ref_ext`` after an ambiguous answer."""
        if payload.order is None:
            raise PermanentError(
                "an invoice made from an order names its order", where=self._where("invoice")
            )
        return await self._create_document(payload, {**ids, payload.order: order_id})

    # ---------------------------------------------------------------------------------------- payments

    async def add_payment(
        self, payment: PaymentPayload, ids: Ids, *, invoice: Mapping[str, Any] | None = None
    ) -> int:
        """``invoice``: the invoice as the caller read it just before (``GET /invoices/{id}``), not read again."""
        where = self._where("payment", payment.ref_ext)
        invoice_id = self._ref_id(ids, payment.invoice, payment)
        paymentid = await self._mode_reglement(payment.payment_type, payment.ref_ext)
        if paymentid is None:
            raise PermanentError("a payment needs a payment type", where=where)
        accountid = payment.bank_account_id
        if not accountid:
            accounts = await self.bank_account_ids()
            if not accounts:
                raise ConfigError("Dolibarr has no open bank account to receive payments", where=where)
            accountid = accounts[0]
        if invoice is None or _int(invoice.get("id"), invoice_id) != invoice_id:
            invoice = await self.get("invoice", invoice_id)
        remain = invoice.get("remaintopay")
        if remain is not None and _dec(remain) <= 0 and payment.amount > 0:
            raise PermanentError(
                f"invoice {invoice.get('ref') or invoice_id} is already fully paid in Dolibarr", where=where
            )
        currency = str(invoice.get("multicurrency_code") or "")
        caps = await self.capabilities()
        in_invoice_currency = bool(currency) and currency.upper() != caps.main_currency.upper()
        body = payment_body(
            payment,
            invoice_id=invoice_id,
            paymentid=paymentid,
            accountid=accountid,
            in_invoice_currency=in_invoice_currency,
        )
        return await self._post_new("payment", "/invoices/paymentsdistributed", body, payment.ref_ext)

    async def invoice_payments(self, invoice_id: int) -> list[dict[str, Any]]:
        try:
            answer = await self._call(
                "GET", f"/invoices/{invoice_id}/payments", kind="invoice", record_id=invoice_id
            )
        except NotFound:
            return []
        return self._list(answer, self._where("invoice", invoice_id), "payments")

    # ------------------------------------------------------------------------------------------- stock

    async def stock_level(self, product_id: int, warehouse_id: int) -> Decimal:
        new = self._new_products.get(product_id)
        if new is not None and new.no_stock:
            return Decimal(0)  # created by this client a moment ago, no movement since: no stock anywhere
        where = self._where("product", product_id)
        try:
            answer = await self._call(
                "GET",
                f"/products/{product_id}/stock",
                kind="product",
                record_id=product_id,
                params={"selected_warehouse_id": warehouse_id},
            )
        except NotFound:
            return Decimal(0)  # "no stock" is a 404 in Dolibarr 20
        stock = self._dict(answer, where, "stock").get("stock_warehouses")
        if not isinstance(stock, dict):
            return Decimal(0)  # PHP encodes an empty array as []
        entry = stock.get(str(warehouse_id))
        return _dec(entry.get("real")) if isinstance(entry, dict) else Decimal(0)

    async def move_stock(self, product_id: int, warehouse_id: int, qty: Decimal, label: str) -> None:
        if qty == 0:
            log.debug("dolibarr_stock_move_zero_skipped", product=product_id, warehouse=warehouse_id)
            return  # Dolibarr answers 503 to a movement of 0
        new = self._new_products.get(product_id)
        if new is not None:
            new.no_stock = False  # before the call: an unclear answer may have moved it all the same
        await self._post_new(
            "stock_movement",
            "/stockmovements",
            stock_movement_body(product_id, warehouse_id, qty, label),
            str(product_id),
        )

    # ------------------------------------------------------------------------------------------- files

    def _modulepart(self, kind: str, object_id: int) -> str:
        try:
            return DOCUMENT_MODULEPARTS[kind]
        except KeyError:
            raise ConfigError(
                f"the REST backend does not attach files to a {kind}", where=self._where(kind, object_id)
            ) from None

    async def list_files(self, kind: ObjectKind, object_id: int) -> list[RemoteDocumentFile]:
        modulepart = self._modulepart(kind, object_id)
        new = self._new_products.get(object_id) if kind == "product" else None
        if new is not None and new.no_files:
            return []  # created by this client a moment ago, nothing uploaded since
        try:
            answer = await self._call(
                "GET",
                "/documents",
                kind=kind,
                record_id=object_id,
                params={"modulepart": modulepart, "id": object_id},
            )
        except NotFound:
            return []  # "... does not return any document"
        rows = self._list(answer, self._where(kind, object_id), "documents")
        return [RemoteDocumentFile(name=str(r.get("name") or ""), size=_int(r.get("size"))) for r in rows]

    async def _object_ref(self, kind: ObjectKind, object_id: int) -> str:
        """The ref that names the object's documents folder: read, except for a product this client created a
        moment ago with a ref Dolibarr kept as sent."""
        new = self._new_products.get(object_id) if kind == "product" else None
        if new is not None and new.ref:
            return new.ref
        ref = str((await self.get(kind, object_id)).get("ref") or "")
        if not ref:
            raise BadResponse(
                f"{kind} {object_id} has no ref to file documents under", where=self._where(kind, object_id)
            )
        return ref

    async def upload_file(self, kind: ObjectKind, object_id: int, name: str, content: bytes) -> None:
        modulepart = self._modulepart(kind, object_id)
        body = {
            "filename": name,
            "modulepart": modulepart,
            "ref": await self._object_ref(kind, object_id),
            "subdir": "",
            "filecontent": base64.b64encode(content).decode("ascii"),
            "fileencoding": "base64",
            "overwriteifexists": 1,
        }
        new = self._new_products.get(object_id) if kind == "product" else None
        if new is not None:
            new.no_files = False  # before the call: an unclear answer may have stored it all the same
        # overwriting makes a repeated upload harmless
        await self._call(
            "POST", "/documents/upload", kind=kind, record_id=object_id, body=body, idempotent=True
        )

    async def delete_file(self, kind: ObjectKind, object_id: int, name: str) -> None:
        modulepart = self._modulepart(kind, object_id)
        directory = _FILENAME_UNSAFE.sub("_", await self._object_ref(kind, object_id))
        try:
            await self._call(
                "DELETE",
                "/documents",
                kind=kind,
                record_id=object_id,
                params={"modulepart": modulepart, "original_file": f"{directory}/{name}"},
            )
        except NotFound:
            log.info("dolibarr_file_already_gone", kind=kind, id=object_id, name=name)


def _port(settings: DolibarrSettings, retry: RetrySettings) -> DolibarrPort:
    """Type-checks (mypy) that the client implements every method of the port."""
    return DolibarrRestClient(settings, retry)

"""The one interface the engine talks to Dolibarr through. REST (``rest.py``) and SOAP (``soap.py``) implement it;
the engine never knows which.

Every method raises only the typed family of :mod:`service.errors`. Dependencies inside payloads are
:class:`~service.dolibarr.model.Ref` values; the engine passes their resolved Dolibarr ids in ``ids``.
A backend that cannot do something (SOAP has no stock movements) says so in :class:`Capabilities` and raises
:class:`~service.errors.ConfigError` if asked anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Literal, Protocol

from service.dolibarr.limit import AdaptiveLimit
from service.dolibarr.model import (
    DocumentKind,
    DocumentPayload,
    DocumentStatus,
    ObjectKind,
    Payload,
    PaymentPayload,
    Ref,
)

Ids = Mapping[Ref, int]
# what ObjectWriter hashes and writes separately, as far as a backend compares it with what Dolibarr holds
Part = Literal["core", "variant"]


@dataclass(frozen=True)
class Capabilities:
    version: str
    categories: bool = True
    variants: bool = True
    stock: bool = True
    documents: bool = True  # file attachments (images)
    payments: bool = True
    contacts: bool = True  # contacts of thirdparties, linked to documents as billing / shipping contacts
    credit_notes: bool = True  # invoices of type credit note that name the invoice they correct
    multicurrency: bool = False
    main_currency: str = "EUR"
    # "rest" or "soap": a flag that is False on "soap" is a limit of Dolibarr's SOAP servers, not a module off
    backend: str = "rest"
    # True when the flags come from Dolibarr's list of enabled modules (an admin key); False when they were
    # probed (a route answering 403 may be a module that is off or a missing permission)
    modules_known: bool = False


_NO_FIELDS: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RemoteObject:
    """A Dolibarr object as found by a lookup: its id, ref, ref_ext and the raw fields the backend returned (one
    shared empty mapping when none: the writer's index holds one per object created and not yet committed)."""

    id: int
    ref: str = ""
    ref_ext: str = ""
    status: str = ""
    raw: Mapping[str, Any] = field(default_factory=lambda: _NO_FIELDS)


@dataclass(frozen=True)
class DocumentTotals:
    """A document's totals as Dolibarr answered them when it validated it (``set_document_status``): Dolibarr's own
    sums of the lines, as a read of the document would give them."""

    total_ttc: Decimal | None
    multicurrency_code: str = ""
    multicurrency_total_ttc: Decimal | None = None
    ref: str = ""


@dataclass(frozen=True)
class RemoteDocumentFile:
    name: str
    size: int
    sha1: str = ""  # when the backend tells it


class DolibarrPort(Protocol):
    # how many requests go to Dolibarr at once: dolibarr.max_concurrency, fewer while it deadlocks
    limit: AdaptiveLimit

    async def close(self) -> None: ...

    async def capabilities(self) -> Capabilities:
        """Version and what this Dolibarr can do (modules on, backend limits). Cached after the first call."""
        ...

    async def check_access(self) -> list[str]:
        """What the key cannot do that ps2doli needs: one human sentence per problem; [] when all is well."""
        ...

    # -- generic objects -----------------------------------------------------------------------------
    async def find_by_ref_ext(self, kind: ObjectKind, ref_ext: str) -> RemoteObject | None: ...

    async def list_ref_ext(self, kind: ObjectKind, prefix: str) -> dict[str, RemoteObject]:
        """Every object of ``kind`` whose ref_ext starts with ``prefix`` (bulk lookup at the start of a pass)."""
        ...

    async def find_product_by_ref(self, ref: str) -> RemoteObject | None: ...

    async def find_thirdparties_by_email(self, email: str) -> list[RemoteObject]: ...

    async def find_foreign_thirdparties_by_email(self, email: str) -> list[RemoteObject]:
        """The thirdparties not made by ps2doli (no ``ps-`` ref_ext) with this e-mail, from one listing of them
        all kept for a short while (an initial pass looks every customer up)."""
        ...

    async def get(self, kind: ObjectKind, object_id: int) -> dict[str, Any]: ...

    async def unchanged_parts(self, found: RemoteObject, payload: Payload, ids: Ids) -> frozenset[Part]:
        """The parts of ``payload`` that the object ``found`` (as ``find_by_ref_ext``, ``list_ref_ext`` or
        ``find_thirdparties_by_email`` returned it) already holds, so that adopting it writes only the others:
        ``"core"`` when :meth:`update` would change nothing, ``"variant"`` when :meth:`update_variant` would
        change nothing. A part the backend cannot tell equal for sure is left out (it is written: a harmless
        write rather than a lost update); a backend that cannot compare answers an empty set (SOAP).
        Category links are not a part here: the engine reads and diffs them itself (:meth:`object_categories`)."""
        ...

    async def create(self, payload: Payload, ids: Ids) -> int:
        """Create the object; returns its Dolibarr id. For documents, lines are added too (draft)."""
        ...

    async def update(self, object_id: int, payload: Payload, ids: Ids) -> None:
        """Bring an existing object in line with the payload (documents: only while draft)."""
        ...

    async def delete(self, kind: ObjectKind, object_id: int) -> None: ...

    async def set_active(self, kind: ObjectKind, object_id: int, active: bool) -> None: ...

    # -- categories -------------------------------------------------------------------------------------
    async def object_categories(self, kind: ObjectKind, object_id: int) -> set[int]: ...

    async def link_category(self, category_id: int, kind: ObjectKind, object_id: int) -> None: ...

    async def unlink_category(self, category_id: int, kind: ObjectKind, object_id: int) -> None: ...

    async def category_objects(self, category_id: int, kind: ObjectKind) -> set[int]:
        """The ids of the objects of ``kind`` linked to a category (empty when the category is gone)."""
        ...

    # -- variants ---------------------------------------------------------------------------------------
    async def create_variant(
        self, parent_id: int, features: tuple[tuple[str, str], ...], payload: Payload, ids: Ids
    ) -> int:
        """Create the child of ``parent_id`` for this feature set (attributes and values created as needed)
        and give the child its own ref_ext. Never called twice for one combination: update the child instead."""
        ...

    async def update_variant(self, parent_id: int, child_id: int, payload: Payload, ids: Ids) -> None:
        """Set the price and weight impacts of the combination behind ``child_id`` (Dolibarr computes the
        child's price and weight from them whenever the parent is saved). Never re-posts the feature set."""
        ...

    # -- documents (orders, invoices) ---------------------------------------------------------------------
    async def document_lines(self, kind: DocumentKind, doc_id: int) -> list[dict[str, Any]]: ...

    async def set_document_status(
        self, kind: DocumentKind, doc_id: int, status: DocumentStatus, *, warehouse_id: int = 0
    ) -> DocumentTotals | None:
        """Move a document to ``status`` (validate, close, cancel...). A no-op when it is already there. Returns
        the document's totals when this call validated it and the validation answered them (REST: Dolibarr 20
        answers the validated object), else None (read the document for them)."""
        ...

    async def invoice_from_order(self, order_id: int, payload: DocumentPayload, ids: Ids) -> int: ...

    async def add_payment(
        self, payment: PaymentPayload, ids: Ids, *, invoice: Mapping[str, Any] | None = None
    ) -> int:
        """``invoice``: the invoice as the caller has just read it (``get``), so it is not read again."""
        ...

    async def invoice_payments(self, invoice_id: int) -> list[dict[str, Any]]: ...

    # -- stock ------------------------------------------------------------------------------------------
    async def stock_level(self, product_id: int, warehouse_id: int) -> Decimal: ...

    async def move_stock(self, product_id: int, warehouse_id: int, qty: Decimal, label: str) -> None: ...

    # -- files ------------------------------------------------------------------------------------------
    async def list_files(self, kind: ObjectKind, object_id: int) -> list[RemoteDocumentFile]: ...

    async def upload_file(self, kind: ObjectKind, object_id: int, name: str, content: bytes) -> None: ...

    async def delete_file(self, kind: ObjectKind, object_id: int, name: str) -> None: ...

    # -- setup ------------------------------------------------------------------------------------------
    async def extrafields(self, elementtype: str) -> dict[str, dict[str, Any]]: ...

    async def payment_type_ids(self) -> dict[str, int]:
        """Payment mode code (CB, CHQ...) -> dictionary id."""
        ...

    async def bank_account_ids(self) -> list[int]: ...

    async def warehouse_ids(self) -> list[int]: ...

"""``sqlfilters`` listings answered through the model's indexes, as MariaDB answers them through its keys.

Reading every row for each listing, a ``(t.ref_ext:=:'ps-main-product-12')`` lookup cost O(rows), so a sync
that looks up one object per record grew with the square of the records. ``DolibarrSim.list_rows`` first narrows
the rows a listing receives to the ids the table's index holds for one of the filter's equalities
(``dolibarr_sqlfilters.index_candidates``); the listing then filters, sorts and pages them as before, so its
answer is the same with or without the index (``tests/sandbox/test_dolibarr_indexes.py``).

Every simulator does it (``DolibarrSim.use_indexes``, on by default, whatever starts it: tests, demo, ``serve``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

from service.sandbox import dolibarr_sqlfilters as sqlf
from service.sandbox.dolibarr_model import DolibarrData
from service.sandbox.dolibarr_table import Obj, Table

# listing kind -> the model's table, and each indexed sqlfilters column -> the table's indexed key it reads
INDEXED: dict[str, tuple[str, dict[str, str]]] = {
    "products": ("products", {"t.ref": "ref", "t.ref_ext": "ref_ext", "t.barcode": "barcode"}),
    "thirdparties": (
        "thirdparties",
        {
            "t.ref_ext": "ref_ext",
            "t.email": "email",
            "t.barcode": "barcode",
            "t.code_client": "code_client",
            "t.nom": "name",
        },
    ),
    "contacts": ("contacts", {"t.ref_ext": "ref_ext", "t.email": "email"}),
    "orders": ("orders", {"t.ref": "ref", "t.ref_ext": "ref_ext", "t.ref_client": "ref_client"}),
    "invoices": ("invoices", {"t.ref": "ref", "t.ref_ext": "ref_ext", "t.ref_client": "ref_client"}),
    "currencies": ("currencies", {"t.code": "code"}),
}


def _id(row: Obj) -> int:
    try:
        return int(row.get("id") or 0)
    except (TypeError, ValueError):
        return 0


def narrow(data: DolibarrData, kind: str, rows: list[Obj], sqlfilters: str) -> list[Obj]:
    """The rows of ``rows`` that may match ``sqlfilters``, found through an index when one of its equalities has
    one (else ``rows`` itself). ``rows`` are the table's own objects (maybe a subset); a syntax error is left
    to the listing to answer."""
    spec = INDEXED.get(kind)
    if spec is None or not sqlfilters or not rows:
        return rows
    table = getattr(data, spec[0], None)
    if not isinstance(table, Table):
        return rows
    try:
        node = sqlf.parse(sqlfilters)
    except (sqlf.FilterSyntaxError, sqlf.SqlError):
        return rows
    lookups: dict[str, Callable[[str], Iterable[int]]] = {
        column: functools.partial(table.ids_by, key)
        for column, key in spec[1].items()
        if key in table.indexed
    }
    ids = sqlf.index_candidates(node, data.columns(kind), lookups)
    if ids is None:
        return rows
    whole = len(rows) == len(table) and all(table.get(_id(rows[i])) is rows[i] for i in (0, -1))
    if whole:  # the listing's rows are the whole table: no need to read them
        return [table[i] for i in sorted(ids) if i in table]
    return [row for row in rows if _id(row) in ids]

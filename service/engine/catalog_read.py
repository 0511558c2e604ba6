"""Reading what a shop product becomes: its combinations (with the ids the JSON output may lose) and the items
of its whole family (products, variants, image sets).

Used by the product stream (``streams.ProductStream``) and by the catalog sweeps (``catalog_streams``), so that
a product read by either gives the very same payloads (and so the same hashes: nothing is pushed twice).

The ``[[null]]`` associations: PrestaShop 1.7.8 on PHP 8 renders the associations that declare no fields
(combination -> ``product_option_values`` and ``images``) as ``[[null]]`` in JSON - the rows are there, their ids
are not (``values.assoc_ids`` returns ``None``). Those records are read again in XML, where each row carries its
id in ``xlink:href`` (``prestashop/xml.py`` recovers it): one request per 50 records, only when the JSON lost
something.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from service.engine.writer import Item
from service.mapping import catalog
from service.mapping.context import ShopContext
from service.prestashop import values
from service.prestashop.client import Filter, PrestaShopClient

log = structlog.get_logger("ps2doli.catalog")

Record = dict[str, Any]

CHUNK = 50


def _id(record: Record) -> int:
    try:
        return values.as_int(record.get("id"))
    except ValueError:
        return 0


# associations every record of a resource has: absent from a record means the renderer dropped them
ALWAYS_ASSOCIATED: Mapping[str, str] = {"combinations": "product_option_values"}


def lost_ids(record: Record, names: Sequence[str], resource: str = "") -> bool:
    """True when one of the associations ``names`` came without its ids: the ``[[null]]`` rendering, or (real
    PrestaShop 1.7.8, JSON with a partial ``display=[...,images[id]]``) no ``associations`` at all, which is
    told apart from "none" by an association every record of ``resource`` has (a combination's option
    values)."""
    always = ALWAYS_ASSOCIATED.get(resource)
    if always is not None and always in names:
        associations = record.get("associations")
        if not isinstance(associations, Mapping) or always not in associations:
            return True
    for name in names:
        try:
            if values.assoc_ids(record, name) is None:
                return True
        except ValueError:
            return False  # a shape no PrestaShop sends: the mapper files it
    return False


async def with_association_ids(
    client: PrestaShopClient, resource: str, records: Sequence[Record], names: Sequence[str]
) -> list[Record]:
    """The records, those whose associations ``names`` lost their ids read again in XML."""
    broken = [_id(r) for r in records if lost_ids(r, names, resource)]
    broken = [i for i in broken if i > 0]
    if not broken:
        return list(records)
    fixed: dict[int, Record] = {}
    for start in range(0, len(broken), CHUNK):
        chunk = broken[start : start + CHUNK]
        for record in await client.fetch(
            resource, filters={"id": Filter.any_of(*chunk)}, display="full", output_format="xml"
        ):
            fixed[_id(record)] = record
    log.info("prestashop.associations_reread_as_xml", resource=resource, records=len(broken))
    return [fixed.get(_id(r), r) for r in records]


async def combinations_of(client: PrestaShopClient, product_ids: Sequence[int]) -> dict[int, list[Record]]:
    """Every combination of these products (``display=full``), by product id, with their association ids."""
    found: dict[int, list[Record]] = {}
    wanted = sorted({i for i in product_ids if i > 0})
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        records = await client.fetch(
            "combinations", filters={"id_product": Filter.any_of(*chunk)}, display="full"
        )
        records = await with_association_ids(
            client, "combinations", records, catalog.COMBINATION_ASSOCIATIONS
        )
        for combination in records:
            found.setdefault(values.as_int(combination.get("id_product")), []).append(combination)
    return found


def has_combinations(product: Record) -> bool:
    try:
        listed = values.assoc_ids(product, "combinations")
    except ValueError:
        listed = None
    return bool(listed) or str(product.get("product_type")) == "combinations"


def family_items(
    resource: str, product: Record, combinations: Sequence[Record], ctx: ShopContext
) -> list[Item]:
    """Everything one shop product becomes, as items: its Dolibarr product(s), then their image sets.
    Raises :class:`~service.mapping.context.MappingError` when the product cannot be mapped."""
    items = [
        Item(resource, "product", ps_id, payload)
        for ps_id, payload in catalog.map_product_family(product, combinations, ctx)
    ]
    items += [
        Item(resource, "images", ps_id, payload)
        for ps_id, payload in catalog.image_sets(product, combinations, ctx)
    ]
    return items

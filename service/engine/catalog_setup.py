"""What a shop's catalog needs in Dolibarr before its first pass: the long-description extrafield and the
shop's root category. Checked once per shop and process (the engine's first catalog pass) and by
``ps2doli check``.

The extrafield: Dolibarr 20's REST API lists extrafields (``GET /setup/extrafields``) but has no route to create
one (``api_setup.class.php``), and the SOAP servers have none either; so ps2doli cannot create it, even with
``catalog.create_extrafield = true``. When it is missing, the pass stops with a :class:`ConfigError` that says
how to create it in Dolibarr's admin pages. Without it Dolibarr would silently drop the value.

The root category (``catalog.root_category``): a Dolibarr category every top-level shop category hangs under,
``ref_ext = ps-{shop}-category-root``; ensured through the writer like any category (found by ``ref_ext``, an
unclaimed category with the same label at the top level is adopted, else created), then kept by hash.
"""

from __future__ import annotations

import structlog

from service.dolibarr.port import DolibarrPort
from service.engine.writer import Item, ObjectWriter, Outcome
from service.errors import ConfigError
from service.mapping import catalog
from service.mapping.context import ShopContext
from service.settings import ShopSettings
from service.state.store import StateStore

log = structlog.get_logger("ps2doli.catalog")

# the resources whose first pass checks the catalog's setup
CATALOG_SETUP_RESOURCES = frozenset({"categories", "products", "combinations", "images"})


def missing_extrafield_message(shop: ShopSettings) -> str:
    name = shop.catalog.long_description_extrafield
    could = "catalog.create_extrafield = true cannot be honoured: " if shop.catalog.create_extrafield else ""
    return (
        f"shop {shop.name}: the product extrafield {name!r} (for the long description) does not exist in "
        f"Dolibarr. {could}Dolibarr's API cannot create extrafields (REST /setup/extrafields only lists them), "
        "so create it once in Dolibarr: Home > Setup > Modules/Applications > Products, the setup (gear) "
        "icon > tab 'Complementary attributes' (extrafields) > 'New attribute': label 'Long description', "
        f"attribute code '{name}', type 'Text' (long text; ps2doli sends plain text with line breaks). Or set "
        'catalog.long_description_extrafield = "" to leave the long description out.'
    )


async def extrafield_problems(port: DolibarrPort, shop: ShopSettings) -> list[str]:
    """One sentence per missing piece of the catalog's Dolibarr setup ([] when all is well)."""
    name = shop.catalog.long_description_extrafield
    enabled = {"products", "combinations"} & set(shop.enabled())
    if not name or not enabled:
        return []
    try:
        fields = await port.extrafields("product")
    except ConfigError as exc:
        # a key without admin rights cannot list extrafields: say so, but do not stop the sync for it
        log.warning("dolibarr.extrafields_unreadable", shop=shop.name, error=str(exc))
        return []
    return [] if name in fields else [missing_extrafield_message(shop)]


async def ensure_root_category(
    writer: ObjectWriter, store: StateStore, shop: ShopSettings, ctx: ShopContext
) -> int | None:
    """The Dolibarr id of the shop's root category, created (or adopted) the first time."""
    payload = catalog.root_category(ctx)
    if payload is None or not ctx.categories_enabled:
        return None
    item = Item("categories", "category", catalog.ROOT_CATEGORY_ID, payload)
    known = await store.record(shop.name, item.kind, item.ps_id)
    outcome, object_id = await writer.push(item, known, {})
    if outcome is not Outcome.UNCHANGED:
        log.info(
            "dolibarr.root_category", shop=shop.name, id=object_id, label=payload.label, outcome=outcome.value
        )
    return object_id


async def prepare_catalog(
    port: DolibarrPort, writer: ObjectWriter, store: StateStore, shop: ShopSettings, ctx: ShopContext
) -> None:
    """Stop with a ConfigError when the catalog cannot be synced as configured; ensure the root category."""
    problems = await extrafield_problems(port, shop)
    if problems:
        raise ConfigError(problems[0])
    await ensure_root_category(writer, store, shop, ctx)

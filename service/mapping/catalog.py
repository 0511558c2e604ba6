"""Categories and products: PrestaShop records -> Dolibarr payloads. Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from service.dolibarr.model import (
    CategoryPayload,
    ImagesPayload,
    ProductPayload,
    Ref,
    StockPayload,
    ref_ext,
)
from service.dolibarr.refs import stored_product_ref
from service.mapping.context import MappingError, ShopContext
from service.mapping.fields import Record, read_decimal, read_flag, read_int, read_lang_text, read_opt_decimal
from service.mapping.text import html_to_text
from service.prestashop import values

# Dolibarr's product ref column is varchar(128); PrestaShop allows 64 characters, so a suffix always fits.
MAX_REF = 128

# what a combination's mapping reads of the combination itself: the combinations sweep asks for these only
COMBINATION_FIELDS: tuple[str, ...] = (
    "id",
    "id_product",
    "reference",
    "ean13",
    "upc",
    "isbn",
    "price",
    "weight",
    "wholesale_price",
)
COMBINATION_ASSOCIATIONS: tuple[str, ...] = ("product_option_values", "images")
# the ps_id of the shop's root category (``catalog.root_category``) in the records table
ROOT_CATEGORY_ID = "root"


def category_ref(ctx: ShopContext, category_id: int | str) -> Ref:
    return Ref("category", ref_ext(ctx.shop, "category", category_id))


def root_category(ctx: ShopContext) -> CategoryPayload | None:
    """The Dolibarr category every top-level shop category hangs under (``catalog.root_category``), if any."""
    label = ctx.catalog.root_category.strip()
    if not label:
        return None
    return CategoryPayload(ref_ext=category_ref(ctx, ROOT_CATEGORY_ID).ref_ext, label=label)


def product_key(id_product: int, id_product_attribute: int = 0) -> str:
    """The ps_id of a product (``12``) or of one of its combinations (``12-3``)."""
    return f"{id_product}-{id_product_attribute}" if id_product_attribute else str(id_product)


def product_ref(ctx: ShopContext, id_product: int, id_product_attribute: int = 0) -> Ref:
    return Ref("product", ref_ext(ctx.shop, "product", product_key(id_product, id_product_attribute)))


def _positive_or_none(value: Decimal | None) -> Decimal | None:
    return value if value is not None and value > 0 else None


# what map_category reads: a category is read with these fields only, never display=full, whose
# associations.products lists every product of the category (Home holds them all: 4.3 MB of JSON for the 38
# categories of a 100k-product shop, about 80 MB of Python objects for a moment)
CATEGORY_FIELDS = ("id", "id_parent", "active", "is_root_category", "name", "description", "date_upd")


def map_category(record: Record, ctx: ShopContext) -> CategoryPayload | None:
    """A shop category, or None for the structural ones (Root, Home) whose children hang at the top (or under
    the shop's configured root category, which the engine ensures)."""
    category_id = read_int(record, "id")
    if (
        category_id in ctx.structural_categories
        or read_flag(record, "is_root_category")
        or not read_int(record, "id_parent")
    ):
        return None
    parent_id = read_int(record, "id_parent")
    parent = None if parent_id in ctx.structural_categories else category_ref(ctx, parent_id)
    if parent is None and root_category(ctx) is not None:
        parent = category_ref(ctx, ROOT_CATEGORY_ID)
    label = read_lang_text(record, "name", ctx.language_id)
    if not label:
        raise MappingError("name", "a category needs a name in the shop's language")
    return CategoryPayload(
        ref_ext=ref_ext(ctx.shop, "category", category_id),
        label=label,
        description=read_lang_text(record, "description", ctx.language_id),
        parent=parent,
        visible=read_flag(record, "active", True),
    )


def base_reference(ctx: ShopContext, reference: str, id_product: int, id_product_attribute: int = 0) -> str:
    """The ref a product should have in Dolibarr before duplicate handling: the shop's reference, else the
    configured template; cleaned as Dolibarr cleans a product ref (``service/dolibarr/refs.py``), so that the
    ref asked for is the ref stored."""
    reference = " ".join(reference.split())  # leading, trailing and doubled spaces are noise in a ref
    if reference:
        return stored_product_ref(reference[:MAX_REF])
    return stored_product_ref(
        ctx.catalog.ref_template.format(
            id=id_product,
            reference=reference,
            id_product_attribute=id_product_attribute,
            shop=ctx.shop,
        )[:MAX_REF]
    )


def numbered_ref(base: str, n: int) -> str:
    """The n-th alternative of a taken ref: ``base-1``, ``base-2``... (n = 0 is the base itself)."""
    if n == 0:
        return base
    suffix = f"-{n}"
    return stored_product_ref(base[: MAX_REF - len(suffix)] + suffix)


def own_ref(base: str, shop: str, ps_id: str) -> str:
    """The alternative of a taken ref once its numbered ones are all taken too (a shop with hundreds of products
    under one reference, ``N/A`` or a placeholder): ``base-<shop>-<ps_id>``, which no other record of ours can
    ask for. Numbering on would cost one look-up per number for each product of such a group (quadratic)."""
    suffix = f"-{shop}-{ps_id}"
    return stored_product_ref(base[: MAX_REF - len(suffix)] + suffix)


def _categories(record: Record, ctx: ShopContext) -> tuple[Ref, ...]:
    if not ctx.categories_enabled:
        return ()
    try:
        ids = values.assoc_ids(record, "categories")
    except ValueError as exc:
        raise MappingError("associations.categories", str(exc)) from None
    wanted = {i for i in ids or [] if i not in ctx.structural_categories}
    return tuple(category_ref(ctx, i) for i in sorted(wanted))


def _barcode(record: Record) -> str:
    for name in ("ean13", "upc", "isbn"):
        value = str(record.get(name) or "").strip()
        if value and value.strip("0"):
            return value
    return ""


def _long_description(record: Record, ctx: ShopContext) -> tuple[tuple[str, str], ...]:
    """The long description as readable text: Dolibarr strips HTML from every extrafield sent through REST
    (see ``service/mapping/text.py``), so it is converted on purpose rather than mangled."""
    field = ctx.catalog.long_description_extrafield
    if not field:
        return ()
    return ((field, html_to_text(read_lang_text(record, "description", ctx.language_id))),)


def is_virtual(record: Record) -> bool:
    """A virtual (downloadable) product: a service in Dolibarr, which keeps no stock of services."""
    return str(record.get("product_type") or record.get("type") or "") in ("virtual", "2")


def map_product(record: Record, ctx: ShopContext) -> ProductPayload:
    """A product without combinations (or the parent of variants)."""
    id_product = read_int(record, "id")
    label = read_lang_text(record, "name", ctx.language_id)
    if not label:
        raise MappingError("name", "a product needs a name in the shop's language")
    tax_group = read_int(record, "id_tax_rules_group")
    tva_tx = ctx.tax_rates.get(tax_group, Decimal("0")) if tax_group else Decimal("0")
    reference = str(record.get("reference") or "")
    virtual = is_virtual(record)
    return ProductPayload(
        ref_ext=ref_ext(ctx.shop, "product", id_product),
        ref=base_reference(ctx, reference, id_product),
        label=label,
        description=read_lang_text(record, "description_short", ctx.language_id),
        price=read_decimal(record, "price") or Decimal("0"),
        tva_tx=tva_tx,
        cost_price=_positive_or_none(read_opt_decimal(record, "wholesale_price")),
        weight=_positive_or_none(read_opt_decimal(record, "weight")),
        length=_positive_or_none(read_opt_decimal(record, "depth")),
        width=_positive_or_none(read_opt_decimal(record, "width")),
        height=_positive_or_none(read_opt_decimal(record, "height")),
        barcode=_barcode(record),
        on_sale=read_flag(record, "active", True) and read_flag(record, "available_for_order", True),
        on_purchase=True,
        service=virtual,
        extrafields=_long_description(record, ctx),
        categories=_categories(record, ctx),
        ref_shared=ctx.catalog.shared_refs and bool(reference.strip()),
    )


def attribute_pairs(combination: Record, ctx: ShopContext) -> tuple[tuple[str, str], ...]:
    """(attribute group, value) pairs of a combination, from its product_option_values association."""
    try:
        ids = values.assoc_ids(combination, "product_option_values")
    except ValueError as exc:
        raise MappingError("associations.product_option_values", str(exc)) from None
    if ids is None:
        raise MappingError(
            "associations.product_option_values",
            "the shop sent the option values without ids (the [[null]] rendering); use XML output",
        )
    pairs = []
    for value_id in ids:
        pair = ctx.option_values.get(value_id)
        if pair is None:
            raise MappingError("associations.product_option_values", f"unknown option value {value_id}")
        pairs.append(pair)
    return tuple(sorted(pairs))


def map_combination(product: Record, combination: Record, ctx: ShopContext) -> ProductPayload:
    """One combination as its own Dolibarr product (``flat`` mode) or as a variant child (``variants`` mode)."""
    parent = map_product(product, ctx)
    id_product = read_int(product, "id")
    id_attribute = read_int(combination, "id")
    pairs = attribute_pairs(combination, ctx)
    detail = ", ".join(f"{group}: {value}" for group, value in pairs)
    reference = str(combination.get("reference") or "")
    ref = (
        base_reference(ctx, reference, id_product, id_attribute)
        if reference.strip()
        else _fallback_combination_ref(ctx, parent, product, id_product, id_attribute)
    )
    price_impact = read_decimal(combination, "price") or Decimal("0")
    weight_impact = read_decimal(combination, "weight") or Decimal("0")
    price = (parent.price or Decimal("0")) + price_impact
    weight = (parent.weight or Decimal("0")) + weight_impact
    wholesale = _positive_or_none(read_opt_decimal(combination, "wholesale_price")) or parent.cost_price
    barcode = _barcode(combination) or ""
    description = detail + ("\n" + parent.description if parent.description else "")
    variants = ctx.catalog.combinations == "variants"
    return ProductPayload(
        ref_ext=ref_ext(ctx.shop, "product", product_key(id_product, id_attribute)),
        ref=ref,
        label=f"{parent.label} - {', '.join(v for _, v in pairs)}" if pairs else parent.label,
        description=description,
        price=price,
        tva_tx=parent.tva_tx,
        cost_price=wholesale,
        weight=weight if weight > 0 else None,
        length=parent.length,
        width=parent.width,
        height=parent.height,
        barcode=barcode,
        on_sale=parent.on_sale,
        on_purchase=True,
        service=parent.service,
        extrafields=parent.extrafields,
        categories=parent.categories,
        variant_of=product_ref(ctx, id_product) if variants else None,
        variant_features=pairs if variants else (),
        variant_price_impact=price_impact if variants else Decimal("0"),
        variant_weight_impact=weight_impact if variants else Decimal("0"),
        ref_shared=ctx.catalog.shared_refs and bool(reference.strip()),
    )


def _fallback_combination_ref(
    ctx: ShopContext, parent: ProductPayload, product: Record, id_product: int, id_attribute: int
) -> str:
    """A combination with no reference of its own: the template when it names the combination, else the
    parent's ref with the combination id, so that siblings never share a base ref."""
    template = ctx.catalog.ref_template
    if "{id_product_attribute}" in template:
        reference = str(product.get("reference") or "")
        return base_reference(ctx, reference if "{reference}" in template else "", id_product, id_attribute)
    return stored_product_ref(f"{parent.ref}-{id_attribute}"[:MAX_REF])


def map_product_family(
    product: Record, combinations: Sequence[Record], ctx: ShopContext
) -> list[tuple[str, ProductPayload]]:
    """Everything one shop product becomes: ``[(ps_id, payload), ...]``.

    A simple product is one payload. A product with combinations is, in ``flat`` mode, one payload per
    combination (the parent itself is not a Dolibarr product, as in the original module); in ``variants``
    mode the parent first, then one child per combination.
    """
    id_product = read_int(product, "id")
    if not combinations:
        return [(product_key(id_product), map_product(product, ctx))]
    family: list[tuple[str, ProductPayload]] = []
    if ctx.catalog.combinations == "variants":
        family.append((product_key(id_product), map_product(product, ctx)))
    for combination in sorted(combinations, key=lambda c: read_int(c, "id")):
        family.append(
            (product_key(id_product, read_int(combination, "id")), map_combination(product, combination, ctx))
        )
    return family


# ------------------------------------------------------------------------------------------------ images


def image_file_name(image_id: int) -> str:
    """The name of a shop image attached to a Dolibarr product (PrestaShop serves its originals as JPEG)."""
    return f"ps-image-{image_id}.jpg"


def _image_ids(record: Record, name: str = "images") -> list[int] | None:
    try:
        ids = values.assoc_ids(record, name)
    except ValueError as exc:
        raise MappingError(f"associations.{name}", str(exc)) from None
    return None if ids is None else list(dict.fromkeys(ids))


def image_sets(
    product: Record, combinations: Sequence[Record], ctx: ShopContext
) -> list[tuple[str, ImagesPayload]]:
    """The image files each Dolibarr product made from this shop product carries: ``[(ps_id, payload)]``.

    A simple product (and a variants parent) carries every image of the product. A combination carries the
    images associated with it; in ``flat`` mode a combination without images of its own carries the
    product's (as the shop shows them), in ``variants`` mode it carries none (its parent has them). A set
    the shop sent without ids (the ``[[null]]`` rendering, not resolved) is left out: nothing is removed on a
    guess.
    """
    if not ctx.catalog.images or not ctx.images_enabled:
        return []
    id_product = read_int(product, "id")
    product_images = _image_ids(product)
    if product_images is None:
        return []

    def payload(key: str, image_ids: Sequence[int]) -> tuple[str, ImagesPayload]:
        return key, ImagesPayload(
            ref_ext=ref_ext(ctx.shop, "images", key),
            product=Ref("product", ref_ext(ctx.shop, "product", key)),
            id_product=id_product,
            images=tuple((i, image_file_name(i)) for i in image_ids),
        )

    if not combinations:
        return [payload(product_key(id_product), product_images)]
    out: list[tuple[str, ImagesPayload]] = []
    variants = ctx.catalog.combinations == "variants"
    if variants:
        out.append(payload(product_key(id_product), product_images))
    for combination in sorted(combinations, key=lambda c: read_int(c, "id")):
        own = _image_ids(combination)
        if own is None:
            continue
        # only images of the product (an association to an image since deleted is ignored)
        own = [i for i in own if i in product_images]
        chosen = own if own or variants else product_images
        out.append(payload(product_key(id_product, read_int(combination, "id")), chosen))
    return out


# ------------------------------------------------------------------------------------------------- stock


def map_stock(
    row: Record,
    ctx: ShopContext,
    *,
    with_combinations: frozenset[int],
    services: frozenset[int] = frozenset(),
) -> StockPayload | None:
    """One ``stock_availables`` row -> the quantity its Dolibarr product must have in the shop's warehouse.

    None when stock is not mirrored (``warehouse_id`` 0, ``stock_mode = "off"``, a backend without stock), and
    for the product-level row (``id_product_attribute`` 0) of a product with combinations: that row is the sum
    of the combinations' rows, and there is no Dolibarr product for it (``flat``) or the parent holds no stock
    of its own (``variants``); and for a virtual product (``services``): a Dolibarr service has no stock (its
    stock movements are refused with HTTP 503 and no reason).
    """
    catalog = ctx.catalog
    if not catalog.warehouse_id or catalog.stock_mode == "off" or not ctx.stock_enabled:
        return None
    id_product = read_int(row, "id_product")
    id_attribute = read_int(row, "id_product_attribute")
    if not id_product:
        raise MappingError("id_product", "a stock row without a product")
    if not id_attribute and id_product in with_combinations:
        return None
    if id_product in services:
        return None
    return StockPayload(
        ref_ext=ref_ext(ctx.shop, "stock", read_int(row, "id")),
        product=product_ref(ctx, id_product, id_attribute),
        warehouse_id=catalog.warehouse_id,
        quantity=Decimal(read_int(row, "quantity")),
    )

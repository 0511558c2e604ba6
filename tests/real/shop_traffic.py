"""Life in the real shop while ps2doli syncs it, through the shop's own webservice only: orders placed (a cart,
then an order that PrestaShop validates with ``PaymentModule::validateOrder``), orders moved to another state,
prices and stock changed. Used by ``test_outages.py`` and ``bench/real_load.py``.

Placing an order through the webservice needs a cart (customer, addresses, carrier, currency, rows) and an
order whose ``total_paid`` equals what PrestaShop computes for that cart, else it records a payment error. The
helper clones a recent order of the seeded shop: same customer, addresses, carrier, currency and rows, and that
order's total (the prices of its products must not have changed since).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any

from tests.real.apis import Shop
from tests.real.shop_edits import set_fields

PAYMENT_ACCEPTED, SHIPPED, DELIVERED, PAYMENT_ERROR = 2, 4, 5, 8
# recent EUR orders without discounts, gift wrapping or special prices: their carts can be placed again at the
# same total (S01 await wire, S72 await check, S73 heavy carrier to DE)
TEMPLATES = (125, 126, 127)


def _order_xml(fields: dict[str, Any]) -> str:
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return f"<prestashop><order>{inner}</order></prestashop>"


async def place_order(shop: Shop, template: int, state: int = PAYMENT_ACCEPTED) -> dict[str, Any]:
    """A new order with the cart of order ``template``, paid (``state``); the new order as the webservice
    renders it."""
    model = (await shop.get(f"orders/{template}"))["order"]
    rows = "".join(
        "<cart_row>"
        f"<id_product>{r['product_id']}</id_product>"
        f"<id_product_attribute>{r['product_attribute_id']}</id_product_attribute>"
        f"<id_address_delivery>{model['id_address_delivery']}</id_address_delivery>"
        f"<quantity>{r['product_quantity']}</quantity>"
        "</cart_row>"
        for r in model["associations"]["order_rows"]
    )
    delivery = model["id_address_delivery"]
    cart = (
        "<prestashop><cart>"
        f"<id_address_delivery>{delivery}</id_address_delivery>"
        f"<id_address_invoice>{model['id_address_invoice']}</id_address_invoice>"
        f"<id_currency>{model['id_currency']}</id_currency><id_customer>{model['id_customer']}</id_customer>"
        f"<id_lang>{model['id_lang']}</id_lang><id_shop>1</id_shop><id_shop_group>1</id_shop_group>"
        f"<id_carrier>{model['id_carrier']}</id_carrier><secure_key>{model['secure_key']}</secure_key>"
        f'<delivery_option>{{"{delivery}":"{model["id_carrier"]},"}}</delivery_option>'
        f"<associations><cart_rows>{rows}</cart_rows></associations>"
        "</cart></prestashop>"
    )
    cart_id = int(ET.fromstring(await shop.write("POST", "carts", cart)).findtext("cart/id") or 0)
    total = Decimal(str(model["total_paid_tax_incl"]))
    xml = _order_xml(
        {
            "id_address_delivery": delivery,
            "id_address_invoice": model["id_address_invoice"],
            "id_cart": cart_id,
            "id_currency": model["id_currency"],
            "id_lang": model["id_lang"],
            "id_customer": model["id_customer"],
            "id_carrier": model["id_carrier"],
            "current_state": state,
            "module": model["module"],
            "payment": model["payment"],
            "total_paid": total,
            "total_paid_real": total,
            "total_products": model["total_products"],
            "total_products_wt": model["total_products_wt"],
            "conversion_rate": model["conversion_rate"],
            "id_shop": 1,
            "id_shop_group": 1,
            "secure_key": model["secure_key"],
        }
    )
    order_id = int(ET.fromstring(await shop.write("POST", "orders", xml)).findtext("order/id") or 0)
    placed: dict[str, Any] = (await shop.get(f"orders/{order_id}"))["order"]
    assert int(placed["current_state"]) != PAYMENT_ERROR, (
        f"order {order_id} (clone of {template}): payment error"
    )
    return placed


async def set_order_state(shop: Shop, order_id: int, state: int) -> None:
    """A new state for an order, as the back office's status button does (a new order history)."""
    xml = (
        "<prestashop><order_history>"
        f"<id_order>{order_id}</id_order><id_order_state>{state}</id_order_state>"
        "</order_history></prestashop>"
    )
    await shop.write("POST", "order_histories", xml)


async def set_price(shop: Shop, product_id: int, price: Decimal) -> None:
    await set_fields(shop, "products", product_id, {"price": f"{price:.6f}"})


async def set_stock(shop: Shop, product_id: int, quantity: int) -> int:
    """The product's own stock row (no combination) set to ``quantity``; the stock_available id."""
    rows = await shop.all("stock_availables", **{"filter[id_product]": f"[{product_id}]"})
    row = next(r for r in rows if int(r["id_product_attribute"]) == 0)
    await set_fields(shop, "stock_availables", int(row["id"]), {"quantity": str(quantity)})
    return int(row["id"])

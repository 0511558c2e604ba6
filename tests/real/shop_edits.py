"""Changing the real shop as a back office or an import would: through its own webservice (PUT, POST, DELETE of
XML documents), never through its database."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence

from tests.real.apis import Shop

# fields the webservice renders but refuses on a PUT
READ_ONLY = {
    "products": ("manufacturer_name", "quantity", "position_in_category"),
    "combinations": (),
    "stock_availables": (),
    "customers": (),
}
SINGULAR = {
    "products": "product",
    "combinations": "combination",
    "stock_availables": "stock_available",
    "customers": "customer",
}


def _clean(xml: str) -> str:
    # PrestaShop 1.7.8 on PHP 8 puts an empty <0> element in some association rows: not even well-formed
    return re.sub(r"<0>.*?</0>", "", xml, flags=re.S)


async def set_fields(
    shop: Shop,
    resource: str,
    record_id: int,
    fields: Mapping[str, str],
    *,
    categories: Sequence[int] | None = None,
) -> None:
    """GET the record's XML, set ``fields`` (every language of a multilingual one), optionally replace its
    category associations, and PUT it back."""
    root = ET.fromstring(_clean(await shop.xml(f"{resource}/{record_id}")))
    node = root.find(SINGULAR[resource])
    assert node is not None
    for name in READ_ONLY.get(resource, ()):
        for child in node.findall(name):
            node.remove(child)
    for name, value in fields.items():
        child = node.find(name)
        assert child is not None, name
        languages = child.findall("language")
        for target in languages or [child]:
            target.text = value
    if categories is not None:
        holder = node.find("associations/categories")
        assert holder is not None
        for child in list(holder):
            holder.remove(child)
        for cid in categories:
            row = ET.SubElement(holder, "category")
            ET.SubElement(row, "id").text = str(cid)
    await shop.write("PUT", f"{resource}/{record_id}", ET.tostring(root, encoding="unicode"))


async def add_combination(
    shop: Shop, product_id: int, option_values: Sequence[int], *, reference: str, price: str
) -> int:
    """POST a new combination of ``product_id`` with these option value ids; its new id."""
    values = "".join(f"<product_option_value><id>{v}</id></product_option_value>" for v in option_values)
    xml = (
        '<prestashop xmlns:xlink="http://www.w3.org/1999/xlink"><combination>'
        f"<id_product>{product_id}</id_product><reference>{reference}</reference>"
        f"<price>{price}</price><minimal_quantity>1</minimal_quantity>"
        f"<associations><product_option_values>{values}</product_option_values></associations>"
        "</combination></prestashop>"
    )
    answer = ET.fromstring(_clean(await shop.write("POST", "combinations", xml)))
    return int(answer.findtext("combination/id") or 0)


async def delete(shop: Shop, resource: str, record_id: int) -> None:
    async with shop.session.delete(f"{shop.url}/api/{resource}/{record_id}", headers=shop.auth) as response:
        assert response.status == 200, f"DELETE /api/{resource}/{record_id}: {response.status}"

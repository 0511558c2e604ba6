"""What the Dolibarr set-up allows, feature by feature, for the configured shops (``ps2doli check``). Pure.

A module that is off (or a key without its permission) does not stop ps2doli: the features that need it step
aside. ``check`` lists each one with what it means for the shop, and fails (exit status 2) only when a feature the
settings ask for cannot work: stock mirrored into a warehouse without the Stock module, ``combinations =
"variants"`` without Variants, payments without Banks. Multicurrency off is a note, not a failure: orders in the
main currency are unaffected, the others are entered in the main currency at their rate (docs/orders.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.dolibarr.port import Capabilities
from service.settings import ShopSettings


@dataclass(frozen=True)
class Finding:
    blocking: bool
    text: str


def soap_findings(caps: Capabilities, shops: Sequence[ShopSettings]) -> list[Finding]:
    """Over Dolibarr's SOAP servers (docs/dolibarr-soap.md): what is synced, and each part of the settings the
    servers cannot hold, which steps aside (notes, not failures: enabling a module would not help). Only
    ``combinations = "variants"`` fails: no SOAP call makes a variant."""
    findings: list[Finding] = []
    for shop in shops:
        enabled = set(shop.enabled())
        name = f"shop {shop.name}"
        labels = {
            "products": "products",
            "combinations": "flat combinations",
            "customers": "customers",
            "orders": "orders with their lines, shipping and discounts, invoices and statuses",
        }
        synced = [label for resource, label in labels.items() if resource in enabled]
        findings.append(Finding(False, f"{name}: synced over SOAP: {', '.join(synced) or 'nothing'}"))

        def aside(what: str, why: str, name: str = name) -> None:
            findings.append(Finding(False, f"{name}: steps aside over SOAP: {what} ({why})"))

        if "categories" in enabled:
            aside("categories and product links", "server_category.php only reads a category")
        if "stock" in enabled and shop.catalog.warehouse_id and shop.catalog.stock_mode != "off":
            aside("stock", "no SOAP call moves stock; catalog.warehouse_id is not used")
        if "images" in enabled and shop.catalog.images:
            aside("images", "no SOAP call attaches files")
        if shop.catalog.combinations == "variants":
            findings.append(
                Finding(True, f'{name}: catalog.combinations = "variants" needs the REST backend: use "flat"')
            )
        if "orders" not in enabled:
            continue
        aside(
            "contacts",
            "no SOAP call links a contact to a document: addresses go on the documents' public note and the "
            "invoice address on the thirdparty",
        )
        aside("customer refs", "no SOAP call stores ref_client: it heads the documents' public note")
        if shop.orders.payments:
            aside("payments", "no SOAP call lists an invoice's payments: invoices stay unpaid")
        aside("credit notes", "createInvoice cannot name the invoice a credit note corrects")
        aside(
            f"currencies other than {caps.main_currency}",
            f"such orders are entered in {caps.main_currency} at the order's rate, written on each document",
        )
    return findings


def feature_findings(caps: Capabilities, shops: Sequence[ShopSettings]) -> list[Finding]:
    if caps.backend == "soap":
        return soap_findings(caps, shops)
    how = "module off" if caps.modules_known else "module off, or the key lacks its read permission"
    findings: list[Finding] = []
    for shop in shops:
        enabled = set(shop.enabled())
        catalog = shop.catalog
        name = f"shop {shop.name}"
        if "categories" in enabled and not caps.categories:
            findings.append(
                Finding(False, f"{name}: Categories ({how}): categories and product links are not synced")
            )
        if catalog.warehouse_id and catalog.stock_mode != "off" and not caps.stock:
            findings.append(
                Finding(
                    True, f"{name}: Stock ({how}) but catalog.warehouse_id is set: enable the Stock module"
                )
            )
        if catalog.combinations == "variants" and not caps.variants:
            findings.append(
                Finding(
                    True,
                    f'{name}: Variants ({how}) but catalog.combinations = "variants": enable the Variants '
                    'module or use "flat"',
                )
            )
        if "orders" not in enabled:  # catalog_only turns orders off
            continue
        if shop.orders.payments and not caps.payments:
            findings.append(
                Finding(True, f"{name}: Banks ({how}) but orders.payments is on: enable Banks and cash")
            )
        if not caps.multicurrency:
            findings.append(
                Finding(
                    False,
                    f"{name}: Multicurrency ({how}): orders in a currency other than {caps.main_currency} are "
                    f"entered in {caps.main_currency} at the order's rate, written on each document and listed "
                    "'converted' by 'ps2doli report totals'; enable Multicurrency to keep their own currency",
                )
            )
    return findings

"""The shop's reference data a mapper needs (taxes, countries, attribute values, order states, currencies),
read from the webservice and turned into a :class:`ShopContext`. Cached per shop for a few minutes: these
resources change rarely and are small."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog

from service.errors import SyncError
from service.mapping.context import OrderState, ShopContext
from service.prestashop import values
from service.prestashop.client import PrestaShopClient
from service.settings import ShopSettings

log = structlog.get_logger("ps2doli.reference")

CACHE_SECONDS = 300.0


def _lang(value: Any, language_id: int) -> str:
    try:
        return values.lang_text(value, language_id)
    except ValueError:
        return ""


def _int(value: Any) -> int:
    try:
        return values.as_int(value)
    except (ValueError, TypeError):
        return 0


def _flag(value: Any) -> bool:
    try:
        return values.as_bool(value)
    except (ValueError, TypeError):
        return False


def order_state(record: dict[str, Any], language_id: int) -> OrderState:
    """Flags first; cancellation, refund and error have no flag of their own, so the state's template (the
    mail PrestaShop sends on entering it) names them: ``order_canceled``, ``refund``, ``payment_error``."""
    template = _lang(record.get("template"), language_id).lower()
    module = str(record.get("module_name") or "").lower()
    return OrderState(
        id=_int(record.get("id")),
        name=_lang(record.get("name"), language_id),
        invoice=_flag(record.get("invoice")),
        paid=_flag(record.get("paid")),
        shipped=_flag(record.get("shipped")),
        delivery=_flag(record.get("delivery")),
        logable=_flag(record.get("logable")),
        cancelled="cancel" in template,
        refunded="refund" in template,
        error="error" in template or "error" in module,
    )


@dataclass
class _Cached:
    context: ShopContext
    at: float


class ReferenceData:
    """Loads and caches one :class:`ShopContext` per shop."""

    def __init__(self) -> None:
        self._cache: dict[str, _Cached] = {}

    async def context(
        self, shop: ShopSettings, client: PrestaShopClient, *, main_currency: str = "EUR"
    ) -> ShopContext:
        cached = self._cache.get(shop.name)
        if cached is not None and time.monotonic() - cached.at < CACHE_SECONDS:
            return cached.context
        context = await self._load(shop, client, main_currency)
        self._cache[shop.name] = _Cached(context, time.monotonic())
        return context

    async def _optional(self, client: PrestaShopClient, resource: str) -> list[dict[str, Any]]:
        """Reference resources the key may not be allowed to read: without them a mapper falls back."""
        try:
            return await client.fetch(resource, display="full")
        except SyncError as exc:
            if exc.retryable:
                raise
            log.warning("prestashop.reference_unavailable", resource=resource, error=str(exc))
            return []

    async def _load(self, shop: ShopSettings, client: PrestaShopClient, main_currency: str) -> ShopContext:
        lang = shop.language_id
        countries = {
            _int(c.get("id")): str(c.get("iso_code") or "") for c in await self._optional(client, "countries")
        }
        country_id = next(
            (cid for cid, iso in countries.items() if iso.upper() == shop.catalog.tax_country.upper()), 0
        )
        rates = {
            _int(t.get("id")): values.as_decimal(t.get("rate") or "0")
            for t in await self._optional(client, "taxes")
        }
        tax_rates: dict[int, Decimal] = {}
        for rule in await self._optional(client, "tax_rules"):
            if _int(rule.get("id_country")) != country_id:
                continue
            group = _int(rule.get("id_tax_rules_group"))
            rate = rates.get(_int(rule.get("id_tax")), Decimal("0"))
            # a group may hold several rules for one country (states, zip ranges): the country-wide one
            # (id_state 0) wins; otherwise the first seen.
            if group not in tax_rates or _int(rule.get("id_state")) == 0:
                tax_rates[group] = rate.normalize() if rate else Decimal("0")
        groups = {
            _int(g.get("id")): _lang(g.get("public_name") or g.get("name"), lang)
            for g in await self._optional(client, "product_options")
        }
        option_values = {
            _int(v.get("id")): (groups.get(_int(v.get("id_attribute_group")), ""), _lang(v.get("name"), lang))
            for v in await self._optional(client, "product_option_values")
        }
        states = {
            _int(s.get("id")): order_state(s, lang) for s in await self._optional(client, "order_states")
        }
        currencies = {
            _int(c.get("id")): str(c.get("iso_code") or "")
            for c in await self._optional(client, "currencies")
        }
        round_type = 2
        for conf in await self._optional(client, "configurations"):
            if conf.get("name") == "PS_ROUND_TYPE":
                round_type = _int(conf.get("value")) or 2
        return ShopContext(
            shop=shop.name,
            language_id=lang,
            zone=shop.zone,
            catalog=shop.catalog,
            orders=shop.orders,
            tax_rates=tax_rates,
            tax_by_id={tid: rate.normalize() if rate else Decimal("0") for tid, rate in rates.items()},
            countries=countries,
            option_values=option_values,
            order_states=states,
            currencies=currencies,
            round_type=round_type,
            main_currency=main_currency,
        )

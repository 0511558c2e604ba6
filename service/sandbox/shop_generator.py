"""Deterministic, realistic PrestaShop shops for the simulator (tests, demo, benchmarks).

``generate_shop(seed)`` always builds the same shop for the same arguments. The data follows what a real
1.7.8 shop holds (see ``shared/reference/prestashop/FIELD-NOTES.md``): a category tree under Root (1) and
Home (2), products with awkward references (duplicates, empty, quotes, ``%``, spaces, accents), prices with
six decimals derived from round tax-included prices, several tax rules groups, EAN13 codes, HTML
descriptions, 0-3 images, combinations (Size x Color), stock rows including zero and negative quantities,
guests sharing an email with a registered customer, companies, supplier/manufacturer addresses, versioned
carriers, the default order states, EUR and USD, and - when ``orders > 0`` - orders moving through states
with invoices, payments (split carts, partial payments, overpaid orders, a payment on an order in "Payment
error"), vouchers, free shipping, gift wrapping, refunds and dates on the autumn clock change and across New
Year.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from service.sandbox.shop_model import (
    OrderLine,
    ShopData,
    dec,
    round2,
    round6,
)

DEFAULT_START = datetime(2025, 10, 20, 9, 0, 0)

# id, iso, name, locale, language_code, date formats
_LANGUAGES = [
    (1, "en", "English (English)", "en-US", "en-us", "m/d/Y", "m/d/Y H:i:s"),
    (2, "fr", "Français (French)", "fr-FR", "fr", "d/m/Y", "d/m/Y H:i:s"),
    (3, "de", "Deutsch (German)", "de-DE", "de-de", "d.m.Y", "d.m.Y H:i:s"),
    (4, "es", "Español (Spanish)", "es-ES", "es-es", "d/m/Y", "d/m/Y H:i:s"),
]

# The default order states of a 1.7.8 install (samples/order_states_full.json): id, flags, color, module,
# names and mail templates in en / fr / de / es.
_ORDER_STATES: list[tuple[int, dict[str, int], str, str, tuple[str, str, str, str], str]] = [
    (
        1,
        {"send_email": 1},
        "#34209E",
        "ps_checkpayment",
        (
            "Awaiting check payment",
            "En attente du paiement par chèque",
            "Warten auf Zahlungseingang Scheck",
            "En espera de pago por cheque",
        ),
        "cheque",
    ),
    (
        2,
        {"invoice": 1, "logable": 1, "paid": 1, "send_email": 1, "pdf_invoice": 1},
        "#3498D8",
        "",
        ("Payment accepted", "Paiement accepté", "Zahlung eingegangen", "Pago aceptado"),
        "payment",
    ),
    (
        3,
        {"invoice": 1, "logable": 1, "paid": 1, "delivery": 1, "send_email": 1},
        "#3498D8",
        "",
        (
            "Processing in progress",
            "En cours de préparation",
            "Bestellung in Bearbeitung",
            "Preparación en curso",
        ),
        "preparation",
    ),
    (
        4,
        {"invoice": 1, "logable": 1, "paid": 1, "delivery": 1, "shipped": 1, "send_email": 1},
        "#01B887",
        "",
        ("Shipped", "Expédié", "Versand", "Enviado"),
        "shipped",
    ),
    (
        5,
        {"invoice": 1, "logable": 1, "paid": 1, "delivery": 1, "shipped": 1},
        "#01B887",
        "",
        ("Delivered", "Livré", "Zugestellt", "Entregado"),
        "",
    ),
    (6, {"send_email": 1}, "#2C3E50", "", ("Canceled", "Annulé", "Storniert", "Cancelado"), "order_canceled"),
    (
        7,
        {"invoice": 1, "send_email": 1},
        "#01B887",
        "",
        ("Refunded", "Remboursé", "Erstattet", "Reembolsado"),
        "refund",
    ),
    (
        8,
        {"send_email": 1},
        "#E74C3C",
        "",
        ("Payment error", "Erreur de paiement", "Fehler bei der Bezahlung", "Error en pago"),
        "payment_error",
    ),
    (
        9,
        {"invoice": 1, "paid": 1, "send_email": 1},
        "#3498D8",
        "",
        (
            "On backorder (paid)",
            "En attente de réapprovisionnement (payé)",
            "Artikel nicht auf Lager (bezahlt)",
            "Pedido pendiente por falta de stock (pagado)",
        ),
        "outofstock",
    ),
    (
        10,
        {"send_email": 1},
        "#34209E",
        "ps_wirepayment",
        (
            "Awaiting bank wire payment",
            "En attente de virement bancaire",
            "Warten auf Zahlungseingang Überweisung",
            "En espera de pago por transferencia bancaria",
        ),
        "bankwire",
    ),
    (
        11,
        {"invoice": 1, "logable": 1, "paid": 1, "send_email": 1},
        "#3498D8",
        "",
        (
            "Remote payment accepted",
            "Paiement à distance accepté",
            "Zahlung außerhalb von PrestaShop eingegangen",
            "Pago remoto aceptado",
        ),
        "payment",
    ),
    (
        12,
        {"send_email": 1},
        "#34209E",
        "",
        (
            "On backorder (not paid)",
            "En attente de réapprovisionnement (non payé)",
            "Artikel nicht auf Lager (nicht bezahlt)",
            "Pedido pendiente por falta de stock (no pagado)",
        ),
        "outofstock",
    ),
    (
        13,
        {},
        "#34209E",
        "ps_cashondelivery",
        (
            "Awaiting Cash On Delivery validation",
            "En attente de paiement à la livraison",
            "Warten auf Zahlungseingang Nachnahme",
            "En espera de validación por contra reembolso",
        ),
        "cashondelivery",
    ),
]

# id, iso, zone, call prefix, zip format, contains states, needs dni, names, cities (postcode, city)
_COUNTRIES: list[
    tuple[int, str, int, int, str, int, int, tuple[str, str, str, str], list[tuple[str, str]]]
] = [
    (
        8,
        "FR",
        1,
        33,
        "NNNNN",
        0,
        0,
        ("France", "France", "Frankreich", "Francia"),
        [
            ("75011", "Paris"),
            ("69003", "Lyon"),
            ("13001", "Marseille"),
            ("64100", "Bayonne"),
            ("59000", "Lille"),
            ("33000", "Bordeaux"),
            ("44000", "Nantes"),
            ("67000", "Strasbourg"),
            ("97400", "Saint-Denis"),
        ],
    ),
    (
        3,
        "BE",
        1,
        32,
        "NNNN",
        0,
        0,
        ("Belgium", "Belgique", "Belgien", "Bélgica"),
        [("1000", "Bruxelles"), ("4000", "Liège"), ("9000", "Gent")],
    ),
    (
        1,
        "DE",
        1,
        49,
        "NNNNN",
        0,
        0,
        ("Germany", "Allemagne", "Deutschland", "Alemania"),
        [("10115", "Berlin"), ("80331", "München"), ("50667", "Köln")],
    ),
    (
        6,
        "ES",
        1,
        34,
        "NNNNN",
        0,
        1,
        ("Spain", "Espagne", "Spanien", "España"),
        [("28001", "Madrid"), ("08001", "Barcelona"), ("41001", "Sevilla")],
    ),
    (
        10,
        "IT",
        1,
        39,
        "NNNNN",
        1,
        0,
        ("Italy", "Italie", "Italien", "Italia"),
        [("00118", "Roma"), ("20121", "Milano")],
    ),
    (
        19,
        "CH",
        7,
        41,
        "NNNN",
        0,
        0,
        ("Switzerland", "Suisse", "Schweiz", "Suiza"),
        [("1201", "Genève"), ("8001", "Zürich")],
    ),
    (
        17,
        "GB",
        7,
        44,
        "",
        0,
        0,
        ("United Kingdom", "Royaume-Uni", "Vereinigtes Königreich", "Reino Unido"),
        [("SW1A 1AA", "London"), ("M1 1AE", "Manchester")],
    ),
    (
        21,
        "US",
        2,
        1,
        "NNNNN",
        1,
        0,
        ("United States", "États-Unis", "Vereinigte Staaten", "Estados Unidos"),
        [("10153", "New York"), ("94103", "San Francisco"), ("60601", "Chicago")],
    ),
]
_EU_COUNTRIES = (8, 3, 1, 6, 10)

_CATEGORY_NAMES: list[tuple[str, str, str, str]] = [
    ("Clothes", "Vêtements", "Kleidung", "Ropa"),
    ("Accessories", "Accessoires", "Accessoires", "Accesorios"),
    ("Art", "Art", "Kunst", "Arte"),
    ("Home", "Maison", "Zuhause", "Hogar"),
    ("Stationery", "Papeterie", "Schreibwaren", "Papelería"),
    ("Kitchen", "Cuisine", "Küche", "Cocina"),
    ("Men", "Hommes", "Herren", "Hombre"),
    ("Women", "Femmes", "Damen", "Mujer"),
    ("Kids", "Enfants", "Kinder", "Niños"),
    ("Lighting", "Luminaires", "Beleuchtung", "Iluminación"),
    ("Bags", "Sacs", "Taschen", "Bolsos"),
    ("Outdoor", "Plein air", "Outdoor", "Exterior"),
    ("Gifts", "Idées cadeaux", "Geschenke", "Regalos"),
    ("Sale", "Soldes", "Sale", "Rebajas"),
    ("Posters", "Affiches", "Poster", "Pósters"),
    ("Tea & coffee", "Thé & café", "Tee & Kaffee", "Té y café"),
]
_NOUNS: list[tuple[str, str, str, str]] = [
    ("T-shirt", "T-shirt", "T-Shirt", "Camiseta"),
    ("Sweater", "Pull", "Pullover", "Jersey"),
    ("Mug", "Mug", "Becher", "Taza"),
    ("Framed poster", "Affiche encadrée", "Gerahmtes Poster", "Póster enmarcado"),
    ("Notebook", "Carnet", "Notizbuch", "Cuaderno"),
    ("Cushion", "Coussin", "Kissen", "Cojín"),
    ("Lamp", "Lampe", "Lampe", "Lámpara"),
    ("Backpack", "Sac à dos", "Rucksack", "Mochila"),
    ("Scarf", "Écharpe", "Schal", "Bufanda"),
    ("Candle", "Bougie", "Kerze", "Vela"),
    ("Teapot", "Théière", "Teekanne", "Tetera"),
    ("Blanket", "Plaid", "Decke", "Manta"),
]
_ADJECTIVES: list[tuple[str, str, str, str]] = [
    ("Hummingbird printed", "imprimé colibri", "mit Kolibri-Druck", "estampado colibrí"),
    ("Mountain fox", "renard des montagnes", "Bergfuchs", "zorro de montaña"),
    ("Brown bear", "ours brun", "Braunbär", "oso pardo"),
    ("Minimalist", "minimaliste", "minimalistisch", "minimalista"),
    ("Vintage", "vintage", "Vintage", "vintage"),
    ("Organic cotton", "en coton bio", "aus Bio-Baumwolle", "de algodón orgánico"),
    ("Crème brûlée", "crème brûlée", "Crème brûlée", "crème brûlée"),
    ("Today is a good day", "« Today is a good day »", "„Today is a good day“", "«Today is a good day»"),
]
_FIRSTNAMES = [
    "Jean",
    "Marie",
    "Élodie",
    "François",
    "Zoë",
    "Jürgen",
    "Åsa",
    "Björn",
    "José",
    "Chloé",
    "Noël",
    "Agnès",
    "Lukas",
    "Emma",
    "Léa",
    "Hugo",
    "Inès",
    "Sofía",
    "Mateo",
    "Anaïs",
    "Jane",
    "John",
    "Oğuz",
    "Siobhán",
]
_LASTNAMES = [
    "Martin",
    "Dubois",
    "Müller",
    "García",
    "O'Connor",
    "Lefèvre",
    "Schmidt",
    "Durand",
    "Le Gall",
    "Ng",
    "Smith",
    "Nowak",
    "Fernández",
    "Østergaard",
    "D'Angelo",
    "Moreau",
    "Faure",
    "Erp",
    "Van der Berg",
    "Łukasiewicz",
]
_COMPANIES = [
    "Erp Corp",
    "Atelier Lumière SARL",
    "Müller & Söhne GmbH",
    "Les Papeteries Réunies",
    "O'Brien Trading Ltd",
    'Café "Le Central"',
    "Bureau 42 (Lyon)",
]
_STREETS = [
    "rue de la République",
    "avenue Maréchal Soult",
    "Hauptstraße",
    "calle Mayor",
    "Fifth Ave.",
    "quai Voltaire",
]
_MANUFACTURERS = {1: "Studio Design", 2: "Graphic Corner", 3: "Maison Lumière", 4: "Nordic Home & Co"}
_SIZES = ["S", "M", "L", "XL"]
_COLORS = [
    ("White", "#ffffff"),
    ("Black", "#434A54"),
    ("Red", "#E84C3D"),
    ("Blue", "#5D9CEC"),
    ("Green", "#A0D468"),
    ("Yellow", "#F1C40F"),
    ("Grey", "#AAB2BD"),
    ("Beige", "#f5f5dc"),
    ("Pink", "#FCCACD"),
    ("Taupe", "#CFC4A6"),
]
_COLOR_TRANSLATIONS = {
    "White": ("Blanc", "Weiß", "Blanco"),
    "Black": ("Noir", "Schwarz", "Negro"),
    "Red": ("Rouge", "Rot", "Rojo"),
    "Blue": ("Bleu", "Blau", "Azul"),
    "Green": ("Vert", "Grün", "Verde"),
    "Yellow": ("Jaune", "Gelb", "Amarillo"),
    "Grey": ("Gris", "Grau", "Gris"),
    "Beige": ("Beige", "Beige", "Beige"),
    "Pink": ("Rose", "Rosa", "Rosa"),
    "Taupe": ("Taupe", "Taupe", "Topo"),
}
# tax-included shelf prices (EUR); tax-excluded prices are derived with six decimals
_SHELF_PRICES = ["9.90", "11.90", "14.90", "19.90", "23.90", "24.90", "29.00", "29.90", "35.90", "39.00",
                 "49.90", "59.00", "79.00", "99.00", "129.00", "149.90", "249.00", "1299.00"]  # fmt: skip
_WEIRD_REFERENCES = [
    'O\'Neil "Classic" (XL)',
    "50% OFF",
    " lead-space",
    "double  space ",
    "Éclair-Ñandú",
    "a\\b/c",
    "☕ MUG-01",
    "(set) [2]",
    "X" * 64,
]
_TRANSLATED_LABELS = {
    "in_stock": ("In stock", "En stock", "Auf Lager", "En stock"),
    "later": (
        "Available in 2 weeks",
        "Disponible sous 2 semaines",
        "In 2 Wochen lieferbar",
        "Disponible en 2 semanas",
    ),
}


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "item"


def _ascii(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", _slug(text))


def _ean13(rng: random.Random) -> str:
    digits = [rng.randrange(10) for _ in range(12)]
    digits[0] = rng.choice([3, 4, 5])
    total = sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits))
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


@dataclass
class _Ctx:
    rng: random.Random
    shop: ShopData
    langs: list[int]
    start: datetime
    shops: list[int]
    products_by_shop: dict[int, list[int]] = field(default_factory=dict)
    customers_by_shop: dict[int, list[int]] = field(default_factory=dict)
    active_by_shop: dict[int, list[int]] = field(default_factory=dict)

    def i18n(self, values: tuple[str, str, str, str]) -> dict[int, str]:
        return {lid: values[(lid - 1) % 4] for lid in self.langs}


def _dt(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


# ----------------------------------------------------------------------------------------------------------
# reference data
# ----------------------------------------------------------------------------------------------------------
def _base_setup(ctx: _Ctx, n_shops: int, round_type: int) -> None:
    shop = ctx.shop
    for lid in ctx.langs:
        _, iso, name, locale, code, lite, full = _LANGUAGES[(lid - 1) % 4]
        shop.add(
            "languages",
            id=lid,
            name=name,
            iso_code=iso,
            locale=locale,
            language_code=code,
            date_format_lite=lite,
            date_format_full=full,
        )
    multi = n_shops > 1
    shop.add("shop_groups", id=1, name="Default", share_customer=int(multi), share_stock=int(multi))
    if n_shops > 2:
        shop.add("shop_groups", id=2, name="Pro", color="#2C3E50")
    shop_names = ["ps2doli Demo Shop", "ps2doli Outlet", "ps2doli Pro", "ps2doli Shop 4", "ps2doli Shop 5"]
    for sid in range(1, n_shops + 1):
        shop.add(
            "shops",
            id=sid,
            id_shop_group=1 if sid <= 2 else 2,
            id_category=2,
            name=shop_names[(sid - 1) % len(shop_names)],
        )
    configs: dict[str, str | None] = {
        "PS_LANG_DEFAULT": "1",
        "PS_CURRENCY_DEFAULT": "1",
        "PS_COUNTRY_DEFAULT": "8",
        "PS_SHOP_DEFAULT": "1",
        "PS_TIMEZONE": "Europe/Paris",
        "PS_ROUND_TYPE": str(round_type),
        "PS_PRICE_ROUND_MODE": "2",
        "PS_SHOP_NAME": shop_names[0],
        "PS_SHOP_EMAIL": "shop@example.com",
        "PS_TAX": "1",
        "PS_TAX_ADDRESS_TYPE": "id_address_delivery",
        "PS_GIFT_WRAPPING": "1",
        "PS_GIFT_WRAPPING_PRICE": "2",
        "PS_GIFT_WRAPPING_TAX_RULES_GROUP": "1",
        "PS_STOCK_MANAGEMENT": "1",
        "PS_ORDER_OUT_OF_STOCK": "0",
        "PS_INVOICE_START_NUMBER": "1",
        "PS_DELIVERY_NUMBER": "1",
        "PS_OS_CHEQUE": "1",
        "PS_OS_PAYMENT": "2",
        "PS_OS_PREPARATION": "3",
        "PS_OS_SHIPPING": "4",
        "PS_OS_DELIVERED": "5",
        "PS_OS_CANCELED": "6",
        "PS_OS_REFUND": "7",
        "PS_OS_ERROR": "8",
        "PS_OS_OUTOFSTOCK_PAID": "9",
        "PS_OS_BANKWIRE": "10",
        "PS_OS_WS_PAYMENT": "11",
        "PS_OS_OUTOFSTOCK_UNPAID": "12",
        "PS_OS_COD_VALIDATION": "13",
        "PS_MULTISHOP_FEATURE_ACTIVE": "1" if multi else "0",
        "PS_WEBSERVICE": "1",
        "PS_CUSTOMER_GROUP": "3",
        "PS_GUEST_GROUP": "2",
        "PS_SHIPPING_HANDLING": "0",
        "PS_WEIGHT_UNIT": "kg",
        "PS_LOGO": "logo.png",
    }
    for name, value in configs.items():
        shop.add("configurations", name=name, value=value)
    shop.add(
        "currencies",
        id=1,
        names="Euro",
        name="Euro",
        symbol="€",
        iso_code="EUR",
        numeric_iso_code="978",
        precision=2,
        conversion_rate="1.000000",
        pattern={lid: ("¤#,##0.00" if lid == 1 else "#,##0.00 ¤") for lid in ctx.langs},
    )
    shop.add(
        "currencies",
        id=2,
        names={lid: ("US Dollar" if lid == 1 else "Dollar des États-Unis") for lid in ctx.langs},
        name="US Dollar",
        symbol="$",
        iso_code="USD",
        numeric_iso_code="840",
        precision=2,
        conversion_rate="1.082500",
        pattern="¤#,##0.00",
    )
    for cid, iso, zone, prefix, zip_fmt, states, dni, names, _ in _COUNTRIES:
        shop.add(
            "countries",
            id=cid,
            id_zone=zone,
            call_prefix=prefix,
            iso_code=iso,
            contains_states=states,
            need_identification_number=dni,
            need_zip_code=1 if zip_fmt else 0,
            zip_code_format=zip_fmt,
            name=ctx.i18n(names),
        )
    # taxes and tax rules groups: FR rates, applied in the EU countries; exports (CH, GB, US) untaxed
    for tid, rate, label in (
        (1, "20.000", "20%"),
        (2, "10.000", "10%"),
        (3, "5.500", "5.5%"),
        (4, "0.000", "0%"),
    ):
        shop.add("taxes", id=tid, rate=rate, name=f"TVA FR {label}")
    groups = [
        (1, "FR Taux standard (20%)", 1),
        (2, "FR Taux réduit (10%)", 2),
        (3, "FR Taux réduit (5.5%)", 3),
        (4, "FR Exonération (0%)", 4),
    ]
    for gid, gname, tax in groups:
        shop.add("tax_rule_groups", id=gid, name=gname)
        for country in _EU_COUNTRIES:
            shop.add("tax_rules", id_tax_rules_group=gid, id_country=country, id_tax=tax, description="")
    carriers: list[tuple[int, str, int, str, str, int]] = [
        (1, "Click & Collect", 1, "0", "Pick up in-store", 1),
        (2, "Colissimo", 0, "5.750000", "Delivery in 48h", 1),
        (3, "DHL Express", 0, "12.500000", "Next day delivery!", 1),
        (4, "My cheap carrier", 0, "3.000000", "Buy more to pay less!", 0),
    ]
    for cid, cname, free, price, delay, active in carriers:
        shop.add(
            "carriers",
            id=cid,
            id_reference=cid,
            name=cname,
            is_free=free,
            id_tax_rules_group=1,
            shipping_handling=0 if free else 1,
            shipping_method=1 if cid != 4 else 2,
            url="https://tracking.example.com/@" if cid == 3 else "",
            max_weight="30.000000" if cid == 2 else "0.000000",
            grade=9 if cid == 3 else 0,
            position=cid - 1,
            active=active,
            delay=delay,
            _price=dec(price),
        )
    for sid, flags, color, module, names, template in _ORDER_STATES:
        shop.add(
            "order_states",
            id=sid,
            color=color,
            module_name=module,
            name=ctx.i18n(names),
            template=template,
            **flags,
        )
    shop.manufacturer_names.update(_MANUFACTURERS)
    # attribute groups and values
    shop.add(
        "product_options",
        id=1,
        is_color_group=0,
        group_type="select",
        position=0,
        name="Size",
        public_name="Size",
    )
    shop.add(
        "product_options",
        id=2,
        is_color_group=1,
        group_type="color",
        position=1,
        name={lid: ("Color", "Couleur", "Farbe", "Color")[(lid - 1) % 4] for lid in ctx.langs},
        public_name={lid: ("Color", "Couleur", "Farbe", "Color")[(lid - 1) % 4] for lid in ctx.langs},
    )
    for pos, size in enumerate(_SIZES):
        shop.add("product_option_values", id=pos + 1, id_attribute_group=1, position=pos, name=size)
    for pos, (cname, hex_) in enumerate(_COLORS):
        tr = _COLOR_TRANSLATIONS[cname]
        shop.add(
            "product_option_values",
            id=len(_SIZES) + pos + 1,
            id_attribute_group=2,
            color=hex_,
            position=pos,
            name=ctx.i18n((cname, *tr)),
        )


def _categories(ctx: _Ctx, count: int) -> list[int]:
    """Root (1) and Home (2), then a nested tree; returns the ids products can go in."""
    shop = ctx.shop
    when = _dt(ctx.start - timedelta(days=420))
    shop.add(
        "categories",
        id=1,
        id_parent=0,
        level_depth=0,
        is_root_category=0,
        name="Root",
        link_rewrite="root",
        date_add=when,
        date_upd=when,
    )
    shop.add(
        "categories",
        id=2,
        id_parent=1,
        level_depth=1,
        is_root_category=1,
        name=ctx.i18n(("Home", "Accueil", "Startseite", "Inicio")),
        link_rewrite=ctx.i18n(("home", "accueil", "startseite", "inicio")),
        date_add=when,
        date_upd=when,
    )
    rng = ctx.rng
    levels: dict[int, int] = {2: 1}
    positions: dict[int, int] = {}
    made: list[int] = []
    for cid in range(3, max(count, 3) + 1):
        parent = 2 if cid <= 8 or not made else rng.choice([c for c in made if levels[c] < 4] or [2])
        level = levels[parent] + 1
        names = _CATEGORY_NAMES[(cid - 3) % len(_CATEGORY_NAMES)]
        suffix = "" if cid - 3 < len(_CATEGORY_NAMES) else f" {cid}"
        label = tuple(n + suffix for n in names)
        position = positions.get(parent, 0)
        positions[parent] = position + 1
        added = ctx.start - timedelta(days=rng.randint(200, 400), seconds=rng.randint(0, 86399))
        shop.add(
            "categories",
            id=cid,
            id_parent=parent,
            level_depth=level,
            position=position,
            active=0 if rng.random() < 0.05 else 1,
            name=ctx.i18n((label[0], label[1], label[2], label[3])),
            link_rewrite={
                lid: _slug(v) for lid, v in ctx.i18n((label[0], label[1], label[2], label[3])).items()
            },
            description=ctx.i18n(
                (
                    f"<p>Discover our {label[0].lower()}: a selection of items for your everyday life.</p>",
                    f"<p>Découvrez notre sélection « {label[1]} ».</p>",
                    f"<p>Entdecken Sie {label[2]}.</p>",
                    f"<p>Descubra {label[3]}.</p>",
                )
            ),
            date_add=_dt(added),
            date_upd=_dt(added + timedelta(days=rng.randint(0, 150))),
        )
        levels[cid] = level
        made.append(cid)
    return made


def _ancestors(shop: ShopData, cid: int) -> list[int]:
    out: list[int] = []
    cats = shop.tables["categories"]
    node = cid
    while node in cats and node not in (0, 1):
        out.append(node)
        node = int(cats[node]["id_parent"])
    return list(reversed(out))


def _reference(rng: random.Random, pid: int, previous: list[str], weird: list[int]) -> str:
    r = rng.random()
    if r < 0.03:
        return ""
    if r < 0.06 and previous:
        return rng.choice(previous)  # the same reference on several products
    if r < 0.08 and previous:
        return rng.choice(previous).swapcase()  # differs only by case
    if r < 0.12 or pid == 9:
        weird[0] += 1
        return _WEIRD_REFERENCES[(weird[0] - 1) % len(_WEIRD_REFERENCES)]
    return f"REF-{pid:05d}"


def _products(ctx: _Ctx, count: int, category_ids: list[int], share: float, per_product: int) -> None:
    shop, rng = ctx.shop, ctx.rng
    tax_groups = [1] * 14 + [2, 2, 3, 3, 4, 0]
    previous_refs: list[str] = []
    weird = [0]  # how many awkward references were handed out (they come in turn)
    position_in_cat: dict[int, int] = {}
    with_combos = {pid for pid in range(1, count + 1) if pid in (1, 2) or (pid != 6 and rng.random() < share)}
    for pid in range(1, count + 1):
        noun = _NOUNS[pid % len(_NOUNS)]
        adj = _ADJECTIVES[(pid // len(_NOUNS)) % len(_ADJECTIVES)]
        names = (
            f"{adj[0]} {noun[0].lower()}",
            f"{noun[1]} {adj[1]}",
            f"{noun[2]} {adj[2]}",
            f"{noun[3]} {adj[3]}",
        )
        if pid > len(_NOUNS) * len(_ADJECTIVES):
            names = (
                f"{names[0]} #{pid}",
                f"{names[1]} n°{pid}",
                f"{names[2]} Nr. {pid}",
                f"{names[3]} n.º {pid}",
            )
        special = pid <= 10
        group = 1 if special else rng.choice(tax_groups)
        rate = {0: Decimal(0), 1: Decimal(20), 2: Decimal(10), 3: Decimal("5.5"), 4: Decimal(0)}[group]
        r = rng.random()
        shelf = (
            Decimal("0.01")
            if r < 0.01
            else Decimal("12500.00")
            if r < 0.02
            else dec(rng.choice(_SHELF_PRICES))
        )
        price = round6(shelf / (1 + rate / 100))
        default_cat = rng.choice(category_ids) if category_ids else 2
        cats = [2, *(c for c in _ancestors(shop, default_cat) if c != 2)]
        position_in_cat[default_cat] = position_in_cat.get(default_cat, 0) + 1
        ref = _reference(rng, pid, previous_refs, weird)
        if ref:
            previous_refs.append(ref)
        added = ctx.start - timedelta(days=rng.randint(1, 400), seconds=rng.randint(0, 86399))
        updated = added + (ctx.start - added) * rng.random()
        manufacturer = rng.choice([1, 2, 3, 4]) if special or rng.random() > 0.1 else 0
        if ctx.shops[1:]:
            r = rng.random()
            shops = ctx.shops if special or r < 0.6 else [ctx.shops[0]] if r < 0.9 else [ctx.shops[1]]
        else:
            shops = ctx.shops
        desc_en = (
            f"<p>{names[0]}: designed in our studio, made to last.</p>"
            f"<ul><li>Reference {ref or 'n/a'}</li><li>Care: 30°C</li></ul>"
        )
        shop.add(
            "products",
            id=pid,
            _shops=shops,
            _categories=cats,
            id_manufacturer=manufacturer,
            manufacturer_name=_MANUFACTURERS.get(manufacturer, False),
            id_supplier=rng.choice([1, 2, 3]) if special or rng.random() > 0.2 else 0,
            id_category_default=default_cat,
            id_tax_rules_group=group,
            position_in_category=position_in_cat[default_cat],
            reference=ref,
            supplier_reference=f"SUP-{pid * 7:06d}" if rng.random() < 0.5 else "",
            location="",
            width=dec(rng.choice(["0", "10", "21.5", "30"])),
            height=dec(rng.choice(["0", "15", "29.7", "40"])),
            depth=dec(rng.choice(["0", "1", "2.5", "12"])),
            weight=round6(Decimal(rng.randint(50, 5000)) / 1000),
            ean13=_ean13(rng) if rng.random() < 0.8 else "",
            isbn="978-2-07-036822-8" if noun[0] == "Notebook" and rng.random() < 0.3 else "",
            upc=f"{rng.randrange(10**11, 10**12)}" if rng.random() < 0.1 else "",
            mpn=f"MPN{pid:04d}" if rng.random() < 0.2 else "",
            price=price,
            wholesale_price=round6(price * Decimal(rng.randint(35, 60)) / 100),
            on_sale=1 if rng.random() < 0.05 else 0,
            active=1 if special or rng.random() > 0.05 else 0,
            minimal_quantity=1 if rng.random() > 0.05 else 2,
            available_date="0000-00-00",
            visibility="both" if rng.random() > 0.05 else "search",
            condition="new" if rng.random() > 0.05 else "refurbished",
            name=ctx.i18n(names),
            link_rewrite={lid: _slug(v) for lid, v in ctx.i18n(names).items()},
            description=ctx.i18n(
                (
                    desc_en,
                    f"<p>{names[1]} : conçu dans notre atelier.</p>",
                    f"<p>{names[2]}.</p>",
                    f"<p>{names[3]}.</p>",
                )
            ),
            description_short=ctx.i18n(
                (
                    f"<p>{noun[0]}, {adj[0].lower()}.</p>",
                    f"<p>{noun[1]}, {adj[1]}.</p>",
                    f"<p>{noun[2]}.</p>",
                    f"<p>{noun[3]}.</p>",
                )
            ),
            meta_title=ctx.i18n(names) if rng.random() < 0.3 else "",
            available_now=ctx.i18n(_TRANSLATED_LABELS["in_stock"]) if rng.random() < 0.2 else "",
            available_later=ctx.i18n(_TRANSLATED_LABELS["later"]) if rng.random() < 0.2 else "",
            date_add=_dt(added),
            date_upd=_dt(updated),
        )
        for s in shops[1:]:
            overrides: dict[str, Any] = {}
            if rng.random() < 0.5:
                overrides["price"] = round6(price * Decimal(rng.randint(85, 110)) / 100)
            if rng.random() < 0.1:
                overrides["active"] = 0
            shop.associate_product(pid, s, **overrides)
        for s in shops:
            ctx.products_by_shop.setdefault(s, []).append(pid)
        if rng.random() < 0.7 or pid == 6:
            shop.tables["products"][pid]["_features"] = [
                (1, rng.choice([3, 4, 5])),
                (2, rng.choice([6, 7, 8])),
            ][: rng.randint(1, 2)]
        if pid != 6 and rng.random() < 0.1:
            shop.tables["products"][pid]["_accessories"] = [max(1, pid - 1)]
        n_images = 2 if pid in (1, 2) else 1 if pid == 6 else rng.choice([0, 1, 1, 2, 3])
        images = [shop.add_image(pid, legend=names[0]) for _ in range(n_images)]
        if pid in with_combos:
            _combinations(ctx, pid, ref, per_product, images, shops)
        else:
            for s in shops if not shop.group_shares(shops[0], "share_stock") else shops[:1]:
                shop.set_stock(pid, 0, _stock_quantity(rng), id_shop=s)


def _stock_quantity(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.1:
        return 0
    if r < 0.15:
        return -rng.randint(1, 5)
    return rng.randint(1, 300)


def _combinations(
    ctx: _Ctx, pid: int, ref: str, per_product: int, images: list[int], shops: list[int]
) -> None:
    shop, rng = ctx.shop, ctx.rng
    n = max(1, per_product + rng.randint(-1, 1)) if pid not in (1, 2) else max(per_product, 2)
    colors = rng.sample(range(len(_SIZES) + 1, len(_SIZES) + len(_COLORS) + 1), k=min(3, len(_COLORS)))
    pairs = [(s + 1, c) for c in colors for s in range(len(_SIZES))][:n]
    for i, (size, color) in enumerate(pairs):
        r = rng.random()
        combo_ref = ref if r < 0.3 else "" if r < 0.4 else f"{ref or 'COMB'}-{_SIZES[size - 1]}-{color}"
        shop.add(
            "combinations",
            id_product=pid,
            reference=combo_ref,
            ean13=_ean13(rng) if rng.random() < 0.6 else "",
            price=dec(rng.choice(["0", "0", "0", "2.5", "5", "-1.25"])),
            weight=dec(rng.choice(["0", "0", "0.1"])),
            quantity=rng.randint(0, 300),
            default_on=1 if i == 0 else None,
            _option_values=[size, color],
            _images=images[: rng.randint(0, len(images))],
        )
    combos = shop.index().combinations_by_product.get(pid, [])
    for s in shops if not shop.group_shares(shops[0], "share_stock") else shops[:1]:
        for cid in combos:
            shop.set_stock(pid, cid, _stock_quantity(rng), id_shop=s)


def _customers(ctx: _Ctx, count: int) -> None:
    shop, rng = ctx.shop, ctx.rng
    registered_emails: list[str] = []
    aid = 1
    # supplier and manufacturer addresses (id_customer = 0)
    for alias, firm, sup, man in (("supplier", "Fashion", 1, 0), ("manufacturer", "Fashion", 0, 1),
                                       ("accessories_supplier", "Accessories and Co", 2, 0)):  # fmt: skip
        shop.add(
            "addresses",
            id=aid,
            id_supplier=sup,
            id_manufacturer=man,
            id_country=21 if alias != "accessories_supplier" else 8,
            id_state=35 if alias != "accessories_supplier" else 0,
            alias=alias,
            company=firm,
            lastname=alias,
            firstname=alias,
            address1="767 Fifth Ave." if alias != "accessories_supplier" else "42 Avenue Maréchal Soult",
            postcode="10153" if alias != "accessories_supplier" else "64990",
            city="New York" if alias != "accessories_supplier" else "Bayonne",
            phone="(212) 336-1440",
            date_add=_dt(ctx.start - timedelta(days=420)),
            date_upd=_dt(ctx.start - timedelta(days=420)),
        )
        aid += 1
    for cid in range(1, count + 1):
        first = rng.choice(_FIRSTNAMES)
        last = rng.choice(_LASTNAMES)
        guest = cid > 2 and registered_emails and rng.random() < 0.06
        email = (
            rng.choice(registered_emails)
            if guest
            else f"{_ascii(first)}.{_ascii(last)}{cid}@example.{rng.choice(['com', 'fr', 'de'])}"
        )
        if not guest:
            registered_emails.append(email)
        company = rng.choice(_COMPANIES) if rng.random() < 0.1 else None
        id_shop = ctx.shops[0] if len(ctx.shops) == 1 or rng.random() < 0.7 else rng.choice(ctx.shops)
        added = ctx.start - timedelta(days=rng.randint(0, 400), seconds=rng.randint(0, 86399))
        newsletter = rng.random() < 0.3
        old_style = rng.random() < 0.5  # created through the front office (empty strings) or the API (NULLs)
        shop.add(
            "customers",
            id=cid,
            id_default_group=2 if guest else 3,
            id_lang=rng.choice(ctx.langs),
            newsletter_date_add=_dt(added) if newsletter else "0000-00-00 00:00:00",
            ip_registration_newsletter=("" if newsletter else None) if not old_style else "",
            last_passwd_gen=_dt(added - timedelta(hours=6)),
            secure_key=_md5(f"secure{cid}{email}"),
            passwd="" if guest else "$2y$10$" + _md5(f"pw{cid}") + _md5(f"salt{cid}")[:21],
            lastname=last,
            firstname=first,
            email=email,
            id_gender=rng.choice([0, 1, 2]),
            birthday=f"{rng.randint(1950, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            if rng.random() < 0.5
            else "0000-00-00",
            newsletter=int(newsletter),
            optin=int(rng.random() < 0.2),
            website=("" if old_style else None) if company is None else "https://www.example.com",
            company=company if company else ("" if old_style else None),
            siret=("123 456 789 00012" if company else ("" if old_style else None)),
            ape=("4791A" if company else ("" if old_style else None)),
            note="" if old_style else None,
            is_guest=int(bool(guest)),
            id_shop=id_shop,
            id_shop_group=shop.shop_group_of(id_shop),
            date_add=_dt(added),
            date_upd=_dt(added + timedelta(days=rng.randint(0, 30))),
            reset_password_token="" if old_style else None,
            _groups=[2] if guest else [3] if rng.random() < 0.9 else [3, 4],
        )
        ctx.customers_by_shop.setdefault(id_shop, []).append(cid)
        for n in range(1 if rng.random() < 0.8 else 2):
            country = rng.choices([c[0] for c in _COUNTRIES], weights=[70, 6, 6, 5, 4, 3, 3, 3])[0]
            info = next(c for c in _COUNTRIES if c[0] == country)
            postcode, city = rng.choice(info[8])
            shop.add(
                "addresses",
                id=aid,
                id_customer=cid,
                id_country=country,
                id_state=0 if not info[5] else rng.randint(1, 50),
                alias=["Mon adresse", "Home", "Bureau", "Livraison"][n + (2 if company else 0)],
                company=company or "",
                lastname=last,
                firstname=first,
                vat_number=f"FR{rng.randrange(10**10, 10**11)}" if company else "",
                address1=f"{rng.randint(1, 240)} {rng.choice(_STREETS)}",
                address2="Bâtiment B" if rng.random() < 0.1 else "",
                postcode=postcode,
                city=city,
                phone=f"0{rng.randint(1, 9)}{rng.randrange(10**7, 10**8)}" if rng.random() < 0.8 else "",
                phone_mobile=f"06{rng.randrange(10**7, 10**8)}" if rng.random() < 0.5 else "",
                dni=f"{rng.randrange(10**7, 10**8)}Z" if info[6] else "",
                date_add=_dt(added),
                date_upd=_dt(added),
            )
            aid += 1


# ----------------------------------------------------------------------------------------------------------
# orders
# ----------------------------------------------------------------------------------------------------------
Event = tuple[datetime, int, Callable[[], None]]


@dataclass
class _Timeline:
    """Events in time order (transitions of different orders interleave, as in a live shop)."""

    shop: ShopData
    events: list[Event] = field(default_factory=list)
    seq: int = 0

    def at(self, when: datetime, action: Callable[[], None]) -> None:
        self.seq += 1
        heapq.heappush(self.events, (when, self.seq, action))

    def run(self) -> None:
        while self.events:
            when, _, action = heapq.heappop(self.events)
            if when > self.shop.clock:
                self.shop.set_clock(when)
            action()


_SCENARIOS = [
    ("check", 26),
    ("card", 20),
    ("wire_pending", 8),
    ("wire_partial", 5),
    ("two_partials", 5),
    ("canceled", 5),
    ("payment_error_paid", 3),
    ("overpaid", 4),
    ("refund_full", 4),
    ("refund_partial", 5),
    ("cod", 4),
    ("split", 4),
    ("remote", 3),
]
_SPECIAL_TIMES = [
    datetime(2025, 10, 26, 2, 30, 0),  # the repeated hour of the autumn clock change (Europe/Paris)
    datetime(2025, 12, 31, 23, 59, 59),
    datetime(2026, 1, 1, 0, 0, 0),
]


def _pick_lines(ctx: _Ctx, id_shop: int) -> list[OrderLine]:
    rng, shop = ctx.rng, ctx.shop
    pool = ctx.active_by_shop.get(id_shop)
    if pool is None:
        pool = [p for p in ctx.products_by_shop.get(id_shop, []) if shop.product_view(p, id_shop)["active"]]
        ctx.active_by_shop[id_shop] = pool
    lines: list[OrderLine] = []
    for pid in rng.sample(pool, k=min(len(pool), rng.choice([1, 1, 2, 2, 3, 4]))):
        combos = shop.index().combinations_by_product.get(pid, [])
        qty = rng.choice([1, 1, 1, 2, 2, 3]) if rng.random() > 0.05 else rng.randint(5, 12)
        lines.append(OrderLine(pid, qty, rng.choice(combos) if combos else 0))
    return lines


def _orders(ctx: _Ctx, count: int) -> None:
    shop, rng = ctx.shop, ctx.rng
    timeline = _Timeline(shop)
    names = [s for s, _ in _SCENARIOS]
    weights = [w for _, w in _SCENARIOS]
    when = ctx.start
    specials = [d for d in _SPECIAL_TIMES if d > ctx.start]
    # orders spread over at least 80 days (so a default start crosses the clock change and New Year)
    gap = max(80 * 24 / count, 0.5)
    for n in range(count):
        when = when + timedelta(hours=rng.uniform(0.1, gap * 2 - 0.1))
        while specials and when >= specials[0] - timedelta(hours=1):
            timeline.at(specials.pop(0), _order_action(ctx, timeline, "check" if n % 2 else "card"))
        scenario = names[n % len(names)] if n < len(names) else rng.choices(names, weights)[0]
        timeline.at(when, _order_action(ctx, timeline, scenario))
        if n == count // 2:
            timeline.at(when + timedelta(minutes=5), lambda: _edit_addresses_and_carrier(ctx))
    timeline.run()


def _edit_addresses_and_carrier(ctx: _Ctx) -> None:
    """Mid-history edits: used addresses get versioned (old one deleted), carrier 2 gets a new id."""
    shop = ctx.shop
    used = sorted({int(o["id_address_delivery"]) for o in shop.tables["orders"].values()})[:3]
    for aid in used:
        shop.update("addresses", aid, address2="Appartement 12")
    if shop.tables["carriers"][2]["deleted"] == 0:
        shop.update("carriers", 2, delay="Delivery in 24h/48h", _price=dec("5.830000"))


def _order_action(ctx: _Ctx, timeline: _Timeline, scenario: str) -> Callable[[], None]:
    def run() -> None:
        _place_order(ctx, timeline, scenario)

    return run


def _place_order(ctx: _Ctx, timeline: _Timeline, scenario: str) -> None:
    shop, rng = ctx.shop, ctx.rng
    id_shop = ctx.shops[0] if len(ctx.shops) == 1 or rng.random() < 0.75 else rng.choice(ctx.shops)
    customers = ctx.customers_by_shop.get(id_shop) or ctx.customers_by_shop.get(ctx.shops[0]) or []
    if not customers:
        return
    if shop.group_shares(id_shop, "share_customer"):
        customers = [
            c
            for s in shop.shops_in_group(shop.shop_group_of(id_shop))
            for c in ctx.customers_by_shop.get(s, [])
        ]
    customer = rng.choice(customers)
    lines = _pick_lines(ctx, id_shop)
    if not lines:
        return
    carriers = [
        c for c, rec in sorted(shop.tables["carriers"].items()) if rec["active"] and not rec["deleted"]
    ]
    carrier = rng.choice(carriers)
    currency = 2 if rng.random() < 0.1 else 1
    extras: dict[str, Any] = {}
    r = rng.random()
    if r < 0.08:
        extras["discount_percent"] = rng.choice([10, 15])
    elif r < 0.15:
        extras["discount_amount"] = rng.choice(["5.00", "10.00"])
    if rng.random() < 0.1:
        extras["free_shipping"] = True
    if rng.random() < 0.08:
        extras["gift_wrapping"] = True
        extras["gift_message"] = "Joyeux anniversaire ! 🎂"
    now = shop.clock
    card = scenario in ("card", "payment_error_paid", "refund_full", "refund_partial", "split", "remote")
    module, payment = (
        ("ps_checkout", "Credit card")
        if card
        else ("ps_wirepayment", "Bank wire")
        if scenario.startswith(("wire", "two_partials"))
        else ("ps_cashondelivery", "Cash on delivery (COD)")
        if scenario == "cod"
        else ("ps_checkpayment", "Payment by check")
    )
    initial = {
        "card": 2,
        "payment_error_paid": 2,
        "refund_full": 2,
        "refund_partial": 2,
        "split": 2,
        "remote": 11,
    }
    state = initial.get(scenario, 10 if module == "ps_wirepayment" else 13 if scenario == "cod" else 1)
    txn = f"pi_{rng.getrandbits(48):012x}" if card else ""
    common: dict[str, Any] = {
        "currency_id": currency,
        "shop_id": id_shop,
        "module": module,
        "payment": payment,
    }
    if scenario == "split" and len(lines) >= 2:
        a, b = shop.create_split_order(
            customer,
            lines[: len(lines) // 2],
            lines[len(lines) // 2 :],
            carrier_ids=(carrier, carriers[-1]),
            discount_amount="5.00",
            state_id=2,
            transaction_id=txn,
            **common,
        )
        for split_id, hours_later in ((a, 20), (b, 30)):
            timeline.at(now + timedelta(hours=hours_later), _state(shop, split_id, 4))
        return
    oid = shop.create_order(
        customer, lines, carrier_id=carrier, state_id=state, transaction_id=txn, **common, **extras
    )
    order = shop.tables["orders"][oid]
    total = dec(order["total_paid_tax_incl"])
    ref = str(order["reference"])
    h = timedelta(hours=1)
    plan: list[tuple[timedelta, Callable[[], None]]] = []
    if scenario in ("check", "overpaid"):
        plan = [
            (h * rng.randint(20, 70), _state(shop, oid, 2)),
            (h * 90, _state(shop, oid, 4, dup=scenario == "overpaid")),
        ]
        plan.append((h * 140, _state(shop, oid, 5)))
    elif scenario in ("card", "split"):
        plan = [(h * 3, _state(shop, oid, 3)), (h * 26, _state(shop, oid, 4)), (h * 75, _state(shop, oid, 5))]
    elif scenario == "remote":
        plan = [(h * 30, _state(shop, oid, 4))]
    elif scenario == "wire_partial":
        plan = [(h * 40, _payment(shop, ref, round2(total / 2)))]
    elif scenario == "two_partials":
        half = round2(total / 2)
        plan = [(h * 30, _payment(shop, ref, half)), (h * 50, _payment(shop, ref, total - half))]
        plan.append((h * 51, _state(shop, oid, 2)))
    elif scenario == "canceled":
        plan = [(h * 100, _state(shop, oid, 6))]
    elif scenario == "payment_error_paid":
        plan = [(h * 2, _state(shop, oid, 8))]
    elif scenario == "refund_full":
        plan = [(h * 24, _state(shop, oid, 4)), (h * 120, _slip(shop, oid, full=True))]
    elif scenario == "refund_partial":
        plan = [(h * 24, _state(shop, oid, 4)), (h * 70, _state(shop, oid, 5)), (h * 200, _slip(shop, oid))]
    elif scenario == "cod":
        plan = [
            (h * 20, _state(shop, oid, 4)),
            (h * 60, _state(shop, oid, 5)),
            (h * 61, _state(shop, oid, 2)),
        ]
    for delay, action in plan:
        timeline.at(now + delay, action)


def _state(shop: ShopData, oid: int, state: int, *, dup: bool = False) -> Callable[[], None]:
    def run() -> None:
        shop.change_order_state(oid, state, duplicate_payment=dup)

    return run


def _payment(shop: ShopData, reference: str, amount: Decimal) -> Callable[[], None]:
    def run() -> None:
        shop.add_payment(reference, amount, "Bank wire", f"VIR-{reference}")

    return run


def _slip(shop: ShopData, oid: int, *, full: bool = False) -> Callable[[], None]:
    def run() -> None:
        if full:
            shop.add_credit_slip(oid, id_order_state=7)
        else:
            details = shop.index().details_by_order.get(oid, [])
            if details:
                shop.add_credit_slip(oid, lines=[(details[0], 1)])

    return run


# ----------------------------------------------------------------------------------------------------------
# entry point
# ----------------------------------------------------------------------------------------------------------
def generate_shop(
    seed: int = 1,
    *,
    categories: int = 30,
    products: int = 500,
    customers: int = 300,
    orders: int = 0,
    combination_share: float = 0.2,
    combinations_per_product: int = 4,
    languages: int = 1,
    shops: int = 1,
    round_type: int = 2,
    start: datetime = DEFAULT_START,
) -> ShopData:
    """A deterministic shop for ``seed``. The catalogue and customers predate ``start``; the clock ends at
    ``start`` (no orders) or at the last order event. Products 1 and 2 have combinations and product 6 is a
    simple product with an image (the ids the reference samples use)."""
    if not 1 <= languages <= len(_LANGUAGES):
        raise ValueError(f"languages must be between 1 and {len(_LANGUAGES)}")
    if shops < 1:
        raise ValueError("shops must be >= 1")
    if round_type not in (1, 2, 3):
        raise ValueError("round_type must be 1, 2 or 3")
    rng = random.Random(seed)
    shop = ShopData(clock=start - timedelta(days=420), seed=seed)
    ctx = _Ctx(
        rng=rng, shop=shop, langs=list(range(1, languages + 1)), start=start, shops=list(range(1, shops + 1))
    )
    _base_setup(ctx, shops, round_type)
    category_ids = _categories(ctx, categories)
    _products(ctx, products, category_ids, combination_share, combinations_per_product)
    _customers(ctx, customers)
    shop.set_clock(start)
    if orders > 0:
        _orders(ctx, orders)
    shop.touch()
    return shop

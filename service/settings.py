"""settings.toml -> frozen, typed settings.

Every wrong value stops start-up with one :class:`ConfigError` that names the key, the value and what is allowed.
Secrets are :class:`Secret` objects: they print as ``***`` everywhere (repr, str, logs, errors) and are read from
the file inline, from an environment variable (``api_key_env``) or from a file (``api_key_file``).
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from service.errors import ConfigError

# Resources a shop can sync, in dependency order (parents first). The scheduler runs one job per enabled one.
CATALOG_RESOURCES: Final = ("categories", "products", "combinations", "stock", "images", "customers")
ORDER_RESOURCES: Final = ("orders",)
ALL_RESOURCES: Final = CATALOG_RESOURCES + ORDER_RESOURCES

DEFAULT_INTERVALS: Final[Mapping[str, int]] = {
    "categories": 300,
    "products": 60,
    "combinations": 900,
    "stock": 120,
    "images": 86400,  # the images check: every image downloaded and compared (see docs/catalog.md)
    "customers": 60,
    "orders": 30,
}

_SHOP_NAME = re.compile(r"^[a-z0-9_]+$")


class Secret:
    """A credential that never shows itself by accident."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class ResourceSettings:
    name: str
    enabled: bool = True
    interval_s: int = 60
    # what a record gone from the shop becomes in Dolibarr: deactivate | delete | ignore
    on_delete: str = "deactivate"
    # a full sweep (read every row with few fields, compare hashes) every N seconds; 0 = never
    sweep_interval_s: int = 0
    # a reconcile pass (id-only listing vs the state: deletions, on_delete policy) every N seconds; 0 = never
    reconcile_interval_s: int = 0


@dataclass(frozen=True)
class CatalogSettings:
    combinations: str = "flat"  # flat | variants
    ref_template: str = "PS{id}"  # used when the PrestaShop reference is empty
    long_description_extrafield: str = "longdescription"  # "" disables
    create_extrafield: bool = False
    tax_country: str = "FR"
    root_category: str = ""  # label of a Dolibarr category every shop category hangs under; "" = none
    warehouse_id: int = 0  # Dolibarr warehouse mirrored from stock_availables; 0 disables stock sync
    stock_mode: str = "mirror"  # mirror | off
    shared_refs: bool = False  # the same reference in two shops is one Dolibarr product
    images: bool = True


@dataclass(frozen=True)
class OrderSettings:
    entry: str = "invoice"  # invoice (first state with the invoice flag) | created
    guest_policy: str = "per_email"  # per_email | shared
    guest_thirdparty_name: str = "Guest customers"
    shipping_ref: str = "SHIPPING"
    discount_ref: str = "DISCOUNT"
    wrapping_ref: str = "GIFTWRAP"
    total_tolerance: Decimal = Decimal("0.05")
    bank_account_id: int = 0  # 0 = the first bank account Dolibarr lists
    validate_warehouse_id: int = 0  # warehouse given to order validation; 0 = none (stock is mirrored)
    default_payment_type: str = "CB"
    payment_terms: str = ""  # Dolibarr payment term code given to orders and invoices; "" = the thirdparty's
    payment_types: Mapping[str, str] = field(default_factory=dict)  # PrestaShop module -> Dolibarr code
    state_overrides: Mapping[int, str] = field(default_factory=dict)  # PS state id -> ignore|validated|...
    invoices: bool = True
    payments: bool = True
    # all: the first live pass reads every order, like any resource; new: it only notes where the shop is, and
    # older orders are left to ``ps2doli backfill --since`` (docs/orders.md)
    first_pass: str = "all"


@dataclass(frozen=True)
class ShopSettings:
    name: str
    url: str  # the shop's base URL; the webservice is at {url}/api
    api_key: Secret
    id_shop: int | None = None
    language_id: int = 1
    timezone: str = "Europe/Paris"
    output_format: str = "json"  # json | xml
    page_size: int = 100
    overlap_s: int = 2
    timeout_s: float = 30.0
    verify_tls: bool = True
    resources: Mapping[str, ResourceSettings] = field(default_factory=dict)
    catalog: CatalogSettings = CatalogSettings()
    orders: OrderSettings = OrderSettings()

    @property
    def api_url(self) -> str:
        return self.url.rstrip("/") + "/api"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def enabled(self) -> list[str]:
        return [name for name in ALL_RESOURCES if name in self.resources and self.resources[name].enabled]


@dataclass(frozen=True)
class DolibarrSettings:
    url: str  # REST: .../api/index.php ; SOAP: the Dolibarr root (…/webservices/*.php is appended)
    api_key: Secret
    backend: str = "rest"  # rest | soap
    max_concurrency: int = 4
    timeout_s: float = 30.0
    verify_tls: bool = True
    # the character set of Dolibarr's database connection ($dolibarr_main_db_character_set): "utf8" (3 bytes,
    # as Dolibarr installs itself) cannot store emoji, so they are left out of what is sent (dolibarr/charset.py)
    charset: str = "utf8"
    # SOAP only
    login: str = ""
    password: Secret = Secret("")
    entity: int = 1


@dataclass(frozen=True)
class RetrySettings:
    attempts: int = 5  # per request, transient errors only
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    failure_backoff_s: tuple[int, ...] = (60, 300, 900, 3600, 21600)  # failure queue schedule


@dataclass(frozen=True)
class Settings:
    state_path: Path
    dolibarr: DolibarrSettings
    shops: tuple[ShopSettings, ...]
    retry: RetrySettings = RetrySettings()
    log_level: str = "info"
    metrics_port: int = 0  # 0 = no /healthz and /metrics endpoint
    source: Path | None = None

    def shop(self, name: str) -> ShopSettings:
        for shop in self.shops:
            if shop.name == name:
                return shop
        raise ConfigError(f"no shop named {name!r}; configured: {', '.join(s.name for s in self.shops)}")


# --------------------------------------------------------------------------------------------- reading


class _Reader:
    """Reads one table of the TOML document, remembering the dotted path for messages."""

    def __init__(self, data: Mapping[str, Any], path: str, base_dir: Path) -> None:
        self.data = data
        self.path = path
        self.base_dir = base_dir
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def _get(self, name: str, default: Any) -> Any:
        self.seen.add(name)
        return self.data.get(name, default)

    def bad(self, name: str, value: Any, allowed: str) -> ConfigError:
        return ConfigError(f"setting {self.key(name)} = {value!r} is not valid: {allowed}")

    def str_(self, name: str, default: str | None = None, choices: tuple[str, ...] = ()) -> str:
        value = self._get(name, default)
        if value is None:
            raise ConfigError(f"setting {self.key(name)} is required")
        if not isinstance(value, str):
            raise self.bad(name, value, "expected a string")
        if choices and value not in choices:
            raise self.bad(name, value, f"allowed: {', '.join(choices)}")
        return value

    def int_(self, name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        value = self._get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.bad(name, value, "expected a whole number")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise self.bad(name, value, f"expected a whole number {bound}")
        return value

    def opt_int(self, name: str) -> int | None:
        if self.data.get(name) is None:
            self.seen.add(name)
            return None
        return self.int_(name, 0, minimum=0)

    def float_(self, name: str, default: float, minimum: float = 0.0) -> float:
        value = self._get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            raise self.bad(name, value, f"expected a number >= {minimum}")
        return float(value)

    def bool_(self, name: str, default: bool) -> bool:
        value = self._get(name, default)
        if not isinstance(value, bool):
            raise self.bad(name, value, "expected true or false")
        return value

    def decimal(self, name: str, default: Decimal) -> Decimal:
        value = self._get(name, default)
        try:
            result = Decimal(str(value))
        except InvalidOperation:
            raise self.bad(name, value, 'expected a decimal number such as "0.05"') from None
        if result < 0:
            raise self.bad(name, value, "expected a number >= 0")
        return result

    def table(self, name: str) -> _Reader:
        value = self._get(name, {})
        if not isinstance(value, Mapping):
            raise self.bad(name, value, "expected a table")
        return _Reader(value, self.key(name), self.base_dir)

    def str_map(self, name: str) -> dict[str, str]:
        value = self._get(name, {})
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            raise self.bad(name, value, "expected a table of strings")
        return {str(k): v for k, v in value.items()}

    def secret(self, name: str, *, required: bool = True) -> Secret:
        """``name`` inline, or ``name_env`` (an environment variable) or ``name_file`` (a file's first line)."""
        inline = self._get(name, None)
        env = self._get(f"{name}_env", None)
        file = self._get(f"{name}_file", None)
        given = [
            k for k, v in ((name, inline), (f"{name}_env", env), (f"{name}_file", file)) if v is not None
        ]
        if len(given) > 1:
            raise ConfigError(f"settings {', '.join(self.key(k) for k in given)}: give only one of them")
        if inline is not None:
            if not isinstance(inline, str) or not inline:
                raise ConfigError(f"setting {self.key(name)} must be a non-empty string")
            return Secret(inline)
        if env is not None:
            if not isinstance(env, str) or not env:
                raise self.bad(f"{name}_env", env, "expected the name of an environment variable")
            value = os.environ.get(env, "")
            if not value:
                raise ConfigError(
                    f"setting {self.key(name + '_env')} names the environment variable {env}, which is not set"
                )
            return Secret(value.strip())
        if file is not None:
            if not isinstance(file, str) or not file:
                raise self.bad(f"{name}_file", file, "expected a file path")
            path = (self.base_dir / file).expanduser()
            try:
                content = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"setting {self.key(name + '_file')} = {file!r}: cannot read it ({exc.strerror})"
                ) from None
            if not content:
                raise ConfigError(f"setting {self.key(name + '_file')} = {file!r}: the file is empty")
            return Secret(content.splitlines()[0].strip())
        if required:
            raise ConfigError(
                f"setting {self.key(name)} is required (or {self.key(name + '_env')} / {self.key(name + '_file')})"
            )
        return Secret("")

    def url(self, name: str) -> str:
        value = self.str_(name)
        if not re.match(r"^https?://[^\s/]+", value):
            raise self.bad(name, value, "expected an http:// or https:// URL")
        return value.rstrip("/")

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise ConfigError(f"unknown setting {self.key(unknown[0])}; check its spelling in settings.toml")


def _resources(shop: _Reader, catalog_only: bool) -> dict[str, ResourceSettings]:
    table = shop.table("resources")
    result: dict[str, ResourceSettings] = {}
    for name in ALL_RESOURCES:
        sub = table.table(name)
        default_enabled = not (catalog_only and name in ORDER_RESOURCES)
        on_delete_default = "ignore" if name in ORDER_RESOURCES else "deactivate"
        enabled = sub.bool_("enabled", default_enabled)
        if catalog_only and name in ORDER_RESOURCES and enabled:
            raise ConfigError(
                f"setting {sub.key('enabled')} = true contradicts {shop.key('catalog_only')} = true"
            )
        result[name] = ResourceSettings(
            name=name,
            enabled=enabled,
            interval_s=sub.int_("interval_s", DEFAULT_INTERVALS[name], minimum=1),
            on_delete=sub.str_("on_delete", on_delete_default, ("deactivate", "delete", "ignore")),
            sweep_interval_s=sub.int_("sweep_interval_s", 3600 if name in ("products", "customers") else 0),
            reconcile_interval_s=sub.int_(
                "reconcile_interval_s",
                3600 if name in ("categories", "products", "customers", "orders") else 0,
            ),
        )
        sub.finish()
    unknown = sorted(set(table.data) - set(ALL_RESOURCES))
    if unknown:
        raise ConfigError(f"unknown resource {table.key(unknown[0])}; allowed: {', '.join(ALL_RESOURCES)}")
    return result


def _catalog(shop: _Reader) -> CatalogSettings:
    t = shop.table("catalog")
    result = CatalogSettings(
        combinations=t.str_("combinations", "flat", ("flat", "variants")),
        ref_template=t.str_("ref_template", "PS{id}"),
        long_description_extrafield=t.str_("long_description_extrafield", "longdescription"),
        create_extrafield=t.bool_("create_extrafield", False),
        tax_country=t.str_("tax_country", "FR"),
        root_category=t.str_("root_category", ""),
        warehouse_id=t.int_("warehouse_id", 0),
        stock_mode=t.str_("stock_mode", "mirror", ("mirror", "off")),
        shared_refs=t.bool_("shared_refs", False),
        images=t.bool_("images", True),
    )
    placeholders = set(re.findall(r"{(\w+)}", result.ref_template))
    allowed = {"id", "reference", "id_product_attribute", "shop"}
    if not placeholders or placeholders - allowed:
        raise t.bad(
            "ref_template",
            result.ref_template,
            "use placeholders among {id}, {reference}, {id_product_attribute}, {shop}, at least {id}",
        )
    t.finish()
    return result


def _orders(shop: _Reader) -> OrderSettings:
    t = shop.table("orders")
    overrides_raw = t.str_map("state_overrides")
    overrides: dict[int, str] = {}
    for key, value in overrides_raw.items():
        if not key.isdigit():
            raise t.bad("state_overrides", key, "keys are PrestaShop order state ids")
        allowed = ("ignore", "draft", "validated", "shipped", "delivered", "cancelled", "refunded")
        if value not in allowed:
            raise t.bad(f"state_overrides.{key}", value, f"allowed: {', '.join(allowed)}")
        overrides[int(key)] = value
    result = OrderSettings(
        entry=t.str_("entry", "invoice", ("invoice", "created")),
        guest_policy=t.str_("guest_policy", "per_email", ("per_email", "shared")),
        guest_thirdparty_name=t.str_("guest_thirdparty_name", "Guest customers"),
        shipping_ref=t.str_("shipping_ref", "SHIPPING"),
        discount_ref=t.str_("discount_ref", "DISCOUNT"),
        wrapping_ref=t.str_("wrapping_ref", "GIFTWRAP"),
        total_tolerance=t.decimal("total_tolerance", Decimal("0.05")),
        bank_account_id=t.int_("bank_account_id", 0),
        validate_warehouse_id=t.int_("validate_warehouse_id", 0),
        default_payment_type=t.str_("default_payment_type", "CB"),
        payment_terms=t.str_("payment_terms", ""),
        payment_types=t.str_map("payment_types"),
        state_overrides=overrides,
        invoices=t.bool_("invoices", True),
        payments=t.bool_("payments", True),
        first_pass=t.str_("first_pass", "all", ("all", "new")),
    )
    t.finish()
    return result


def _shop(raw: Mapping[str, Any], index: int, base_dir: Path) -> ShopSettings:
    r = _Reader(raw, f"shops[{index}]", base_dir)
    name = r.str_("name")
    if not _SHOP_NAME.match(name):
        raise r.bad("name", name, "lower-case letters, digits and _ only (it is part of every ref_ext)")
    r.path = f"shops.{name}"
    timezone = r.str_("timezone", "Europe/Paris")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise r.bad("timezone", timezone, "expected an IANA zone name such as Europe/Paris") from None
    catalog_only = r.bool_("catalog_only", False)
    shop = ShopSettings(
        name=name,
        url=r.url("url"),
        api_key=r.secret("api_key"),
        id_shop=r.opt_int("id_shop"),
        language_id=r.int_("language_id", 1, minimum=1),
        timezone=timezone,
        output_format=r.str_("output_format", "json", ("json", "xml")),
        page_size=r.int_("page_size", 100, minimum=1, maximum=1000),
        overlap_s=r.int_("overlap_s", 2, minimum=0, maximum=3600),
        timeout_s=r.float_("timeout_s", 30.0, minimum=0.1),
        verify_tls=r.bool_("verify_tls", True),
        resources=_resources(r, catalog_only),
        catalog=_catalog(r),
        orders=_orders(r),
    )
    r.finish()
    return shop


def _check_category_roots(shops: tuple[ShopSettings, ...]) -> None:
    """Several shops syncing categories: Dolibarr refuses two categories with one label at one level (the
    shops' "Clothes" would collide), so each shop's tree hangs under its own ``catalog.root_category``."""
    syncing = [s for s in shops if "categories" in s.enabled()]
    if len(syncing) < 2:
        return
    for shop in syncing:
        if not shop.catalog.root_category.strip():
            raise ConfigError(
                f"setting shops.{shop.name}.catalog.root_category is required when several shops sync "
                "categories: Dolibarr refuses two categories with the same label at one level, so each shop's "
                f'categories hang under a root category of its own (e.g. root_category = "{shop.name}"), '
                "or disable the categories resource of all shops but one"
            )
    labels = [s.catalog.root_category.strip().casefold() for s in syncing]
    for shop, label in zip(syncing, labels, strict=True):
        if labels.count(label) > 1:
            raise ConfigError(
                f"setting shops.{shop.name}.catalog.root_category = {shop.catalog.root_category!r} is used by "
                "another shop too; each shop needs a root category of its own"
            )


def parse_settings(data: Mapping[str, Any], *, base_dir: Path, source: Path | None = None) -> Settings:
    top = _Reader(data, "", base_dir)
    dol = top.table("dolibarr")
    backend = dol.str_("backend", "rest", ("rest", "soap"))
    dolibarr = DolibarrSettings(
        url=dol.url("url"),
        api_key=dol.secret("api_key"),
        backend=backend,
        max_concurrency=dol.int_("max_concurrency", 4, minimum=1, maximum=64),
        timeout_s=dol.float_("timeout_s", 30.0, minimum=0.1),
        verify_tls=dol.bool_("verify_tls", True),
        charset=dol.str_("charset", "utf8", ("utf8", "utf8mb4")),
        login=dol.str_("login", ""),
        password=dol.secret("password", required=False),
        entity=dol.int_("entity", 1, minimum=1),
    )
    if backend == "soap" and not dolibarr.login:
        raise dol.bad("login", "", "the SOAP backend needs a Dolibarr login (and password)")
    dol.finish()

    raw_shops = top._get("shops", [])
    if not isinstance(raw_shops, list) or not raw_shops:
        raise ConfigError("setting shops is required: add at least one [[shops]] table")
    shops = tuple(_shop(s, i, base_dir) for i, s in enumerate(raw_shops))
    names = [s.name for s in shops]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"setting shops: the name {duplicates[0]!r} is used twice; names must be unique")
    _check_category_roots(shops)

    rt = top.table("retry")
    retry = RetrySettings(
        attempts=rt.int_("attempts", 5, minimum=1, maximum=20),
        base_delay_s=rt.float_("base_delay_s", 0.5),
        max_delay_s=rt.float_("max_delay_s", 30.0),
    )
    rt.finish()

    state = top.str_("state_path", "ps2doli.sqlite3")
    settings = Settings(
        state_path=(base_dir / state).expanduser(),
        dolibarr=dolibarr,
        shops=shops,
        retry=retry,
        log_level=top.str_("log_level", "info", ("debug", "info", "warning", "error")),
        metrics_port=top.int_("metrics_port", 0, maximum=65535),
        source=source,
    )
    top.finish()
    return settings


def config_path(explicit: str | None) -> Path:
    """``--config PATH``, else ``$PS2DOLI_CONFIG``, else ``./settings.toml``."""
    return Path(explicit or os.environ.get("PS2DOLI_CONFIG") or "settings.toml")


def load_settings(path: Path) -> Settings:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"settings file {path} not found; pass --config PATH or set PS2DOLI_CONFIG "
            "(settings.toml in the repository is a commented example)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"settings file {path} is not valid TOML: {exc}") from None
    return parse_settings(data, base_dir=path.resolve().parent, source=path)


def readable_by_others(path: Path) -> bool:
    """True when the settings file (which may hold keys) can be read by group or others."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH))

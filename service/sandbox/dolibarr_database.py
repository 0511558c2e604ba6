"""What Dolibarr 20.0.2's MariaDB does to REST writes, for the simulator: deadlocks under concurrent writes, and
the 3-byte ``utf8`` connection that cannot store characters above U+FFFF.

Seen on the live 20.0.2 (MariaDB, ``$dolibarr_main_db_character_set = 'utf8'`` as the installer leaves it, tables
in ``utf8mb4``) and read in its sources:

- **Deadlocks.** Parallel writes deadlock (four in parallel on two cores is enough). The transaction is rolled
  back, nothing is stored, and the API answers with the database's words: ``POST /products`` 500 "Error creating
  product" (``"0": "Deadlock found when trying to get lock; try restarting transaction"``, the object's
  ``error``, api_products.class.php:325), ``POST /orders`` 500 "Error creating order" (api_orders.class.php:291),
  ``POST /stockmovements`` 503 "Error when create stock movement : Deadlock found ..." (the error is part of the
  message there, api_stockmovements.class.php:205). :func:`deadlock_error` gives those answers;
  :class:`Contention` decides when a write deadlocks (``DolibarrSimOptions.deadlock_above``), and the fault plan's
  ``deadlock`` kind injects them at random.
- **A ``utf8`` connection.** A text with a character outside the BMP (an emoji) is refused by the first SQL
  statement that carries it: in a column written by an INSERT, ``Incorrect string value: '\\xF0\\x9F\\x8E\\x81 C...'
  for column `dolibarr`.`llx_product`.`label` at row 1`` (MariaDB quotes 6 bytes from the first bad one, ASCII
  as is, and ``...`` when more follow); compared with ``=`` before the insert (the product ``ref``), ``Illegal
  mix of collations (utf8mb4_unicode_ci,IMPLICIT) and (utf8mb3_unicode_ci,COERCIBLE) for operation '='``; in a
  column of the UPDATE that ``Product::create`` runs after its INSERT (description, notes), ``Error : Incorrect
  string value ... - UPDATE llx_product SET ...`` twice (``error`` and ``errors[]``). A category label is first
  compared by ``Categorie::already_exists()``, whose SQL error (-1) is taken for "exists":
  ``Impossible to add the tag/category <label> : CategoryExistsAtSameLevel``. :func:`charset_error` gives those
  answers (products and orders as observed; thirdparties, contacts, categories and invoices from the sources,
  with the column written first). A list whose ``sqlfilters`` compares a column with such a character answers
  503 "Error when retrieve product list : Illegal mix of collations ... for operation '='" (or ``'like'``):
  :func:`filter_error`. Not modelled: ``GET /products/ref/<ref with an emoji>`` answers 200 with an empty product
  (``"id": null``: ``fetch()``'s -1 is taken for found).
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from service.sandbox.dolibarr_table import DolibarrError

DEADLOCK = "Deadlock found when trying to get lock; try restarting transaction"
COLLATIONS = "Illegal mix of collations (utf8mb4_unicode_ci,IMPLICIT) and (utf8mb3_unicode_ci,COERCIBLE) for operation '='"
DATABASE = "dolibarr"

_ASTRAL = re.compile("[\U00010000-\U0010ffff]")

# (method, route) -> (HTTP status, message, source) of a write that deadlocked; only the message of
# stockmovements carries the database error, the others carry it under "0"
_DEADLOCKS: Mapping[tuple[str, str], tuple[int, str, str, bool]] = {
    ("POST", "products"): (500, "Error creating product", "api_products.class.php:325", True),
    ("POST", "orders"): (500, "Error creating order", "api_orders.class.php:291", True),
    ("POST", "stockmovements"): (
        503,
        f"Error when create stock movement : {DEADLOCK}",
        "api_stockmovements.class.php:205",
        False,
    ),
}


def deadlock_error(method: str, route: str) -> DolibarrError | None:
    """Dolibarr's answer to this write when its transaction deadlocked; None for a request that does not."""
    known = _DEADLOCKS.get((method, route.strip("/")))
    if known is None:
        return None
    status, message, source, detail = known
    return DolibarrError(status, message, source, extra=DEADLOCK if detail else None)


@dataclass
class Contention:
    """Writes to the deadlock-prone routes as transactions that hold their locks for ``hold_s``: one that starts
    while the number of such writes in flight (itself included) is above ``above`` deadlocks with probability
    ``probability`` (a seeded draw), and stores nothing. The first of overlapping writes never deadlocks, so
    work always progresses."""

    above: int
    probability: float = 1.0
    hold_s: float = 0.01
    seed: int = 1
    in_flight: int = 0
    peak: int = 0
    deadlocks: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.rng.seed(self.seed)

    async def deadlocked(self) -> bool:
        """Hold the locks for a moment; True when this transaction lost a deadlock (and must not run)."""
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        crowded = self.in_flight > self.above
        try:
            await asyncio.sleep(self.hold_s)
        finally:
            self.in_flight -= 1
        if crowded and self.rng.random() < self.probability:
            self.deadlocks += 1
            return True
        return False


@dataclass
class Overlap:
    """Writes of one route as transactions that hold their locks for ``hold_s``: :meth:`strikes` is True, with
    probability ``rate`` (a seeded draw), for a write that started while another of the same route was in flight
    (the first of overlapping writes is never struck, so work always progresses). What a strike means is the
    caller's: the live 20.0.2 answered 200 to a ``POST /stockmovements`` it did not keep (5 of 255 parallel
    movements), and 500 "Error creating new product variant" to a ``POST /products/{id}/variants`` that stored
    nothing."""

    rate: float
    hold_s: float = 0.01
    seed: int = 1
    in_flight: int = 0
    strikes_count: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.rng.seed(self.seed)

    async def strikes(self) -> bool:
        crowded = self.in_flight > 0
        self.in_flight += 1
        try:
            await asyncio.sleep(self.hold_s)
        finally:
            self.in_flight -= 1
        if crowded and self.rng.random() < self.rate:
            self.strikes_count += 1
            return True
        return False


# ------------------------------------------------------------------------------------------- utf8 (3 bytes)


def incorrect_string(text: str, table: str, column: str) -> str:
    """MariaDB's message for ``text`` in ``column``: 6 bytes from the first character it cannot store."""
    found = _ASTRAL.search(text)
    raw = text[found.start() if found else 0 :].encode("utf-8")
    shown = "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02X}" for b in raw[:6])
    more = "..." if len(raw) > 6 else ""
    return f"Incorrect string value: '{shown}{more}' for column `{DATABASE}`.`{table}`.`{column}` at row 1"


@dataclass(frozen=True)
class _Write:
    """How one REST write reaches the database: the table, the body keys compared with ``=`` before the
    insert, the keys the INSERT carries (in its column order) and how the error comes back."""

    table: str
    message: str  # Restler's message; "" = the object's error is the message itself
    source: str
    status: int = 500
    compared: tuple[str, ...] = ()
    inserted: tuple[str, ...] = ()
    updated_after: bool = False  # keys not inserted go through an UPDATE whose error quotes the statement
    lines_table: str = ""
    renamed: Mapping[str, str] = field(default_factory=dict)
    bare: bool = False  # the message alone, without the database's words
    inline: bool = False  # the database's words appended to the message, not under "0"


_WRITES: Mapping[tuple[str, str], _Write] = {
    ("POST", "products"): _Write(
        "llx_product",
        "Error creating product",
        "api_products.class.php:325",
        compared=("ref",),
        inserted=("ref", "ref_ext", "label", "price_label", "canvas", "batch_mask"),
        updated_after=True,
        renamed={"note_private": "note", "desc": "description"},
    ),
    ("PUT", "products/{id}"): _Write(
        "llx_product",
        "Error updating product",
        "api_products.class.php:498",
        updated_after=True,
        renamed={"note_private": "note", "desc": "description"},
    ),
    ("POST", "products/{id}/variants"): _Write(
        "llx_product", "Error creating new product variant", "api_products.class.php:1895", bare=True
    ),
    ("POST", "thirdparties"): _Write(
        "llx_societe",
        "Error creating thirdparty",
        "api_thirdparties.class.php:267",
        inserted=("name", "name_alias", "ref_ext"),
        renamed={"name": "nom"},
    ),
    ("PUT", "thirdparties/{id}"): _Write(
        "llx_societe", "", "api_thirdparties.class.php:327", renamed={"name": "nom"}
    ),
    ("POST", "contacts"): _Write(
        "llx_socpeople",
        "Error creating contact",
        "api_contacts.class.php:304",
        inserted=("lastname", "firstname", "ref_ext"),
    ),
    ("PUT", "contacts/{id}"): _Write("llx_socpeople", "", "api_contacts.class.php:364"),
    ("POST", "categories"): _Write(
        "llx_categorie", "Error when creating category", "api_categories.class.php:214", compared=("label",)
    ),
    ("PUT", "categories/{id}"): _Write("llx_categorie", "", "api_categories.class.php:257"),
    ("POST", "orders"): _Write(
        "llx_commande",
        "Error creating order",
        "api_orders.class.php:291",
        inserted=("note_private", "note_public", "ref_ext", "ref_client"),
        lines_table="llx_commandedet",
    ),
    ("PUT", "orders/{id}"): _Write("llx_commande", "", "api_orders.class.php:675"),
    ("POST", "orders/{id}/lines"): _Write(
        "llx_commandedet", "", "api_orders.class.php:391", status=400, renamed={"desc": "description"}
    ),
    ("POST", "invoices"): _Write(
        "llx_facture",
        "Error creating invoice",
        "api_invoices.class.php:322",
        inserted=("ref_client", "ref_ext", "note_private", "note_public"),
        lines_table="llx_facturedet",
    ),
    ("POST", "invoices/{id}/lines"): _Write(
        "llx_facturedet",
        "Unable to insert the new line. Check your inputs. ",
        "api_invoices.class.php:824",
        status=400,
        inline=True,
        renamed={"desc": "description"},
    ),
}


def _texts(value: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """Every (key, string) of a JSON body, nested keys named by their last component."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _texts(v, str(k))
    elif isinstance(value, list):
        for v in value:
            yield from _texts(v, key)


def _astral(value: Any) -> tuple[str, str] | None:
    return next(((k, t) for k, t in _texts(value) if _ASTRAL.search(t)), None)


def _route_template(route: str) -> str:
    return re.sub(r"(?<=/)\d+(?=/|$)", "{id}", route.strip("/"))


_CLAUSE = re.compile(r"\(([\w.]+):([<>!=a-z]+):([^()]*)\)", re.IGNORECASE)


def filter_error(sqlfilters: str) -> str:
    """The database's error for a list whose ``sqlfilters`` compares a column with a character a ``utf8``
    connection cannot carry ("" when none does): ``Illegal mix of collations ... for operation '='`` (or
    ``'like'``), which the list endpoints answer 503 "Error when retrieve ... list : ..." (live 20.0.2)."""
    for clause in _CLAUSE.finditer(sqlfilters):
        if _ASTRAL.search(clause.group(3)):
            operator = clause.group(2).lower()
            operator = "like" if operator.endswith("like") else operator
            return COLLATIONS.replace("operation '='", f"operation '{operator}'")
    return ""


def charset_ignored(method: str, route: str, body: Mapping[str, Any]) -> bool:
    """``PUT /invoices/{id}`` with text a ``utf8`` connection cannot store: ``Facture::update`` fails (-1) and
    api_invoices takes any non-zero result for success: the invoice is answered unchanged, nothing stored."""
    return method == "PUT" and _route_template(route) == "invoices/{id}" and _astral(body) is not None


def charset_error(method: str, route: str, body: Mapping[str, Any]) -> DolibarrError | None:
    """The error a ``utf8`` (3-byte) connection gives this write, or None when every text fits (or the route
    writes no text column). ``route`` is the path after ``/api/index.php/``."""
    if method not in ("POST", "PUT") or _astral(body) is None or charset_ignored(method, route, body):
        return None
    template = _route_template(route)
    write = _WRITES.get((method, template))
    if write is None:
        api = template.split("/", 1)[0]
        table = {"documents": "llx_ecm_files", "stockmovements": "llx_stock_mouvement"}.get(api, f"llx_{api}")
        first_key, first_text = _astral(body) or ("", "")
        return DolibarrError(500, incorrect_string(first_text, table, first_key), f"api_{api}.class.php:0")

    def fail(*details: str) -> DolibarrError:
        if write.bare:
            return DolibarrError(write.status, write.message, write.source)
        if write.inline or not write.message:
            return DolibarrError(write.status, write.message + details[0], write.source)
        return DolibarrError(write.status, write.message, write.source, extra=details[0], more=details[1:])

    top = {k: v for k, v in body.items() if k not in ("lines", "array_options")}
    for key in write.compared:
        value = top.get(key)
        if isinstance(value, str) and _ASTRAL.search(value):
            if write.table == "llx_categorie":
                return fail(f"Impossible to add the tag/category {value} : CategoryExistsAtSameLevel")
            return fail(COLLATIONS)
    for key in write.inserted:
        value = top.get(key)
        if isinstance(value, str) and _ASTRAL.search(value):
            return fail(incorrect_string(value, write.table, write.renamed.get(key, key)))
    found = _astral(top)
    if found is not None:
        key, text = found
        message = incorrect_string(text, write.table, write.renamed.get(key, key))
        if write.updated_after:
            message = f"Error : {message} - UPDATE {write.table} SET ..."
            return fail(message, message)
        return fail(message)
    found = _astral(body.get("array_options") or {})
    if found is not None:
        key, text = found
        return fail(incorrect_string(text, f"{write.table}_extrafields", key.removeprefix("options_")))
    found = _astral(body.get("lines") or [])
    if found is not None and write.lines_table:
        key, text = found
        message = incorrect_string(text, write.lines_table, {"desc": "description"}.get(key, key))
        return fail(message, message)
    return None


# ------------------------------------------------------------------------------------------------------------
# the database stopped (MariaDB down, then started again): what the API answers meanwhile
# ------------------------------------------------------------------------------------------------------------
# Seen on the real pair while its MariaDB stopped mid-sync (tests/real/test_outages.py, the access log) and read in
# the 20.0.2 sources:
#
# - a request that cannot connect at all: master.inc.php's getDoliDBInstance() fails and dol_print_error()
#   (core/lib/functions.lib.php) prints its diagnostic page and exits. $langs has no language yet, so every
#   label is its translation key ("DolibarrHasDetectedError.<br>"); the last "Message" names host, port, user and
#   database. No Content-Type of its own (PHP's text/html). Status 202 (http_response_code(202), what the real
#   access log shows: 771-797 bytes per page); 500 and 200 were seen behind proxies: ``DB_PAGE_STATUSES``.
# - a request whose connection opened but whose first query failed (the database going away):
#   api_access.class.php answers 503 "Error when fetching user api_key :" + $db->error_msg (not a property of
#   DoliDB: empty).
# - a call that failed inside its object method and reports the object's empty error: "Error when validating
#   Order: " (api_orders.class.php:754), "Error when validating Invoice: " (api_invoices.class.php:968); nothing
#   stored (the transaction went with the connection).
# - an upload: dol_move() renames the file into place, then cannot index it (ECM) and returns false:
#   500 "Failed to move file into '<DOL_DATA_ROOT>/.../<file>'" (api_documents.class.php:945) - the file *is*
#   there.

DB_PAGE_STATUSES = (202, 500, 200)
DB_HOST = "127.0.0.1"
DB_PORT = 3316
DB_USER = "dolibarr"
DB_NAME = "dolibarr"
DB_CONNECT_ERROR = "Connection refused"


def dol_print_error_page(
    request_uri: str,
    user_agent: str,
    *,
    messages: tuple[str, ...] = (),
    translated: bool = False,
    login: str = "",
    modules: tuple[str, ...] = (),
    php: str = "8.2.28",
    server: str = "nginx/1.22.1",
    system: str = "Linux realpair 6.1.0-28-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22) x86_64",
    when: str = "20261207015531",
) -> str:
    """dol_print_error()'s page in web mode with $dolibarr_main_prod = 0 (the real pair's conf.php): the labels
    as translation keys when no language was loaded yet (the database never answered), else in English."""

    def t(key: str, english: str) -> str:
        return english if translated else key

    def esc(text: str) -> str:
        return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")

    out = [
        f"{t('DolibarrHasDetectedError', 'Dolibarr has detected a technical error')}.<br>\n",
        t(
            "InformationToHelpDiagnose",
            "This information can be useful for diagnostic purposes (you can set option $dolibarr_main_prod to "
            "'1' to hide sensitive information)",
        )
        + ":<br>\n",
        f"<b>{t('Date', 'Date')}:</b> {when}<br>\n",
        f"<b>{t('Dolibarr', 'Dolibarr')}:</b> 20.0.2 - https://www.dolibarr.org<br>\n",
    ]
    if login:
        out.append(f"<b>{t('Login', 'Login')}:</b> {login}<br>\n")
    out += [
        f"<b>{t('PHP', 'PHP')}:</b> {php}<br>\n",
        f"<b>{t('Server', 'Server')}:</b> {esc(server)}<br>\n",
        f"<b>{t('OS', 'OS')}:</b> {system}<br>\n",
        f"<b>{t('UserAgent', 'User agent')}:</b> {esc(user_agent)}<br>\n",
        "<br>\n",
        f"<b>{t('RequestedUrl', 'Requested URL')}:</b> {esc(request_uri)}<br>\n",
        f"<b>{t('Referer', 'Referer')}:</b> <br>\n",
        f"<b>{t('MenuManager', 'Menu manager')}:</b> <br>\n",
        "<br>\n",
    ]
    if modules:
        out.append(f"<b>{t('Modules', 'Modules')}:</b> {', '.join(modules)}<br>\n")
    out.append(f"<b>{t('DatabaseTypeManager', 'Database type manager')}:</b> mysqli<br>\n")
    none = t("ErrorNoRequestInError", "No request in error")
    for key, english in (
        ("RequestLastAccessInError", "Latest database access request error"),
        ("ReturnCodeLastAccessInError", "Return code for latest database access request error"),
        ("InformationLastAccessInError", "Information for latest database access request error"),
    ):
        out.append(f"<b>{t(key, english)}:</b> {none}<br>\n")
    out.append("<br>\n")
    for message in messages:
        out.append(f"<b>{t('Message', 'Message')}:</b> {esc(message)}<br>\n")
    return "".join(out)


def database_down_page(request_uri: str, user_agent: str) -> str:
    """The page of a request that could not connect to the database (master.inc.php)."""
    message = f"host={DB_HOST}, port={DB_PORT}, user={DB_USER}, databasename={DB_NAME}, {DB_CONNECT_ERROR}"
    return dol_print_error_page(request_uri, user_agent, messages=(message,))


def key_lookup_error() -> DolibarrError:
    """api_access.class.php:154: the key's user could not be read (the query failed)."""
    return DolibarrError(
        503, "Error when fetching user api_key :", "api_access.class.php:154", stage="authenticate"
    )


def user_fetch_error() -> DolibarrError:
    """api_access.class.php:173: the key's row was read, then loading its user failed (the database went away in
    between): the 401 of a wrong key, for the right one. Real 20.0.2, MariaDB stopped mid-sync."""
    return DolibarrError(
        401,
        "Error user not valid (not found with api key or bad status or bad validity dates) (conf->entity=1)",
        "api_access.class.php:173",
        stage="authenticate",
    )


_VALIDATE = re.compile(r"^(orders|invoices)/\d+/validate$")


def no_reason_error(method: str, route: str) -> DolibarrError | None:
    """The empty-reason 500 of a validation or an invoice create whose connection went away, or None for another
    call (real 20.0.2, MariaDB stopped: "Error creating invoice" with ``"0": null``)."""
    if method == "POST" and route == "invoices":
        return DolibarrError(500, "Error creating invoice", "api_invoices.class.php:322", null_detail=True)
    found = _VALIDATE.match(route)
    if method != "POST" or found is None:
        return None
    if found.group(1) == "orders":
        return DolibarrError(500, "Error when validating Order: ", "api_orders.class.php:754")
    return DolibarrError(500, "Error when validating Invoice: ", "api_invoices.class.php:968")


_PAYMENT = re.compile(r"^invoices/(paymentsdistributed|\d+/payments)$")


def _payment_error(method: str, route: str, message: str, line: str) -> DolibarrError | None:
    """The 400 of a payment call (``POST /invoices/paymentsdistributed``, ``/invoices/{id}/payments``), or None."""
    if method != "POST" or not _PAYMENT.match(route):
        return None
    return DolibarrError(400, message, line)


def payment_rate_error(method: str, route: str) -> DolibarrError | None:
    """A payment whose invoice rate could not be read (Paiement::create: MultiCurrency::getInvoiceRate's SELECT
    failed, nothing inserted yet), or None for another call. Real 20.0.2, MariaDB stopped mid-sync."""
    return _payment_error(
        method,
        route,
        "Payment error : FailedToFoundTheConversionRateForInvoice",
        "api_invoices.class.php:1520",
    )


def payment_bank_error(method: str, route: str) -> DolibarrError | None:
    """A payment whose bank line could not be written because the database went away (Paiement::addPaymentToBank
    failed, the transaction rolled back: nothing stored), or None for another call. Real 20.0.2, MariaDB stopped
    mid-sync."""
    return _payment_error(
        method, route, "Add payment to bank error : MySQL server has gone away", "api_invoices.class.php:1535"
    )


MODULE_DIRS = {"product": "produit", "produit": "produit", "service": "produit", "order": "commande",
               "commande": "commande", "invoice": "facture", "facture": "facture", "thirdparty": "societe",
               "societe": "societe"}  # fmt: skip


def file_not_moved_error(documents_root: str, body: Mapping[str, Any], stored_as: str) -> DolibarrError:
    """api_documents.class.php:945: dol_move() renamed the file into place but could not index it."""
    folder = MODULE_DIRS.get(str(body.get("modulepart") or ""), str(body.get("modulepart") or ""))
    ref = re.sub(r"[^\w.-]", "_", str(body.get("ref") or ""))
    return DolibarrError(
        500,
        f"Failed to move file into '{documents_root}/{folder}/{ref}/{stored_as}'",
        "api_documents.class.php:945",
    )

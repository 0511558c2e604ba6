"""Customers and addresses: PrestaShop records -> Dolibarr thirdparties and contacts. Pure, no I/O.

Registered customers become one thirdparty each (``ps-{shop}-customer-{id}``). Guest checkouts follow the
shop's ``orders.guest_policy``: ``per_email`` gives one thirdparty per e-mail address
(``ps-{shop}-guest-{digest}``), ``shared`` one thirdparty for every guest (``ps-{shop}-guest-shared``). The
password hash and ``secure_key`` PrestaShop exposes are never read.
"""

from __future__ import annotations

import hashlib

from service.dolibarr.model import ContactPayload, Ref, ThirdpartyPayload, ref_ext
from service.mapping.context import MappingError, ShopContext
from service.mapping.fields import Record, read_flag, read_int


def _str(record: Record, name: str) -> str:
    value = record.get(name)
    if value is None or value is False:
        return ""
    if isinstance(value, (dict, list)):
        raise MappingError(name, f"expected text, got {type(value).__name__}")
    return " ".join(str(value).split())


def email_key(email: str) -> str:
    """A stable, ref_ext-safe id for an e-mail address (case and spaces do not matter)."""
    return hashlib.sha1(email.strip().lower().encode()).hexdigest()[:16]


def is_guest(customer: Record) -> bool:
    return read_flag(customer, "is_guest", False)


def customer_ref(ctx: ShopContext, customer: Record) -> Ref:
    """The thirdparty a customer record belongs to, following the guest policy."""
    if not is_guest(customer):
        return Ref("thirdparty", ref_ext(ctx.shop, "customer", read_int(customer, "id")))
    if ctx.orders.guest_policy == "shared":
        return Ref("thirdparty", ref_ext(ctx.shop, "guest", "shared"))
    email = _str(customer, "email")
    if not email:
        raise MappingError("email", "a guest customer without e-mail cannot be matched to a thirdparty")
    return Ref("thirdparty", ref_ext(ctx.shop, "guest", email_key(email)))


def person_name(first: str, last: str) -> str:
    return " ".join(p for p in (first, last) if p)


def map_customer(customer: Record, ctx: ShopContext) -> ThirdpartyPayload:
    ref = customer_ref(ctx, customer)
    if is_guest(customer) and ctx.orders.guest_policy == "shared":
        return ThirdpartyPayload(ref_ext=ref.ref_ext, name=ctx.orders.guest_thirdparty_name)
    company = _str(customer, "company")
    person = person_name(_str(customer, "firstname"), _str(customer, "lastname"))
    name = company or person or _str(customer, "email")
    if not name:
        raise MappingError("lastname", "a customer needs a company, a name or an e-mail")
    note = f"PrestaShop customer {read_int(customer, 'id')}" + (f" ({person})" if company and person else "")
    return ThirdpartyPayload(
        ref_ext=ref.ref_ext,
        name=name,
        email=_str(customer, "email"),
        idprof1=_str(customer, "siret"),
        idprof2=_str(customer, "ape"),
        active=read_flag(customer, "active", True) and not read_flag(customer, "deleted", False),
        note_private=note,
    )


def address_ref(ctx: ShopContext, address_id: int) -> Ref:
    return Ref("contact", ref_ext(ctx.shop, "address", address_id))


def map_address(address: Record, owner: Ref, ctx: ShopContext) -> ContactPayload:
    """An address becomes a contact of its customer's thirdparty (a thirdparty has one postal address in
    Dolibarr; a customer's several delivery and invoice addresses fit its contacts)."""
    address_id = read_int(address, "id")
    lastname = _str(address, "lastname") or _str(address, "alias") or f"Address {address_id}"
    street = "\n".join(p for p in (_str(address, "address1"), _str(address, "address2")) if p)
    country_id = read_int(address, "id_country") if address.get("id_country") not in (None, "", 0, "0") else 0
    return ContactPayload(
        ref_ext=ref_ext(ctx.shop, "address", address_id),
        thirdparty=owner,
        lastname=lastname,
        firstname=_str(address, "firstname"),
        company=_str(address, "company"),
        address=street,
        zip=_str(address, "postcode"),
        town=_str(address, "city"),
        country_code=ctx.countries.get(country_id, ""),
        phone=_str(address, "phone"),
        phone_mobile=_str(address, "phone_mobile"),
        active=not read_flag(address, "deleted", False),
    )

"""Customer mapping: registered customers, companies, guests under both policies; secrets never read."""

from __future__ import annotations

from typing import Any

import pytest

from service.mapping import customers
from service.mapping.context import MappingError, ShopContext
from service.settings import OrderSettings

CTX = ShopContext(shop="main", countries={8: "FR"})


def customer(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 1,
        "lastname": "DOE",
        "firstname": "John",
        "email": "pub@prestashop.com",
        "company": "",
        "siret": "",
        "ape": "",
        "active": 1,
        "deleted": 0,
        "is_guest": 0,
        "passwd": "81f3e18bc5ed036df4ffc9528ec6e26a",
        "secure_key": "7b2dc8161f4acf1341ec0de77304c2b6",
    }
    base.update(fields)
    return base


@pytest.mark.parametrize(
    ("fields", "name", "ref_ext"),
    [
        ({}, "John DOE", "ps-main-customer-1"),
        ({"company": "ACME", "siret": "123"}, "ACME", "ps-main-customer-1"),
        ({"company": None}, "John DOE", "ps-main-customer-1"),
        ({"firstname": "", "lastname": ""}, "pub@prestashop.com", "ps-main-customer-1"),
    ],
)
def test_a_registered_customer_is_one_thirdparty(fields: dict[str, Any], name: str, ref_ext: str) -> None:
    payload = customers.map_customer(customer(**fields), CTX)
    assert (payload.name, payload.ref_ext) == (name, ref_ext)


def test_secrets_of_the_customer_never_reach_the_payload() -> None:
    text = repr(customers.map_customer(customer(), CTX))
    assert "81f3e18bc5ed036df4ffc9528ec6e26a" not in text and "7b2dc816" not in text


def test_guests_share_a_thirdparty_per_email_whatever_the_case() -> None:
    a = customers.map_customer(customer(id=5, is_guest=1, email="Jane@Example.com"), CTX)
    b = customers.map_customer(customer(id=9, is_guest=1, email=" jane@example.com"), CTX)
    assert a.ref_ext == b.ref_ext and a.ref_ext.startswith("ps-main-guest-")


def test_the_shared_guest_policy_gives_one_guest_thirdparty() -> None:
    ctx = ShopContext(shop="main", orders=OrderSettings(guest_policy="shared"))
    payload = customers.map_customer(customer(is_guest=1), ctx)
    assert payload.ref_ext == "ps-main-guest-shared" and payload.name == "Guest customers"


def test_a_customer_with_nothing_to_name_it_is_refused() -> None:
    with pytest.raises(MappingError):
        customers.map_customer(customer(firstname="", lastname="", email=""), CTX)


def test_an_address_is_a_contact_of_its_owner() -> None:
    owner = customers.customer_ref(CTX, customer())
    contact = customers.map_address(
        {
            "id": 4,
            "id_customer": 1,
            "lastname": "DOE",
            "firstname": "John",
            "address1": "16, Main street",
            "address2": "2nd floor",
            "postcode": "75002",
            "city": "Paris",
            "id_country": 8,
            "phone": "0102030405",
            "deleted": 0,
        },
        owner,
        CTX,
    )
    assert contact.thirdparty == owner
    assert contact.address == "16, Main street\n2nd floor"
    assert contact.country_code == "FR"
    assert contact.ref_ext == "ps-main-address-4"

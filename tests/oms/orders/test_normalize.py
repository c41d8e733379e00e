from hypothesis import given
from hypothesis import strategies as st

from oms.orders.normalize import (
    normalize_address,
    normalize_country,
    normalize_email,
    normalize_phone,
    normalize_postal_code,
)


def test_email_is_lower_cased_and_trimmed():
    assert normalize_email("  Bob.Norman@Example.COM ") == "bob.norman@example.com"
    assert normalize_email("not-an-email") == ""
    assert normalize_email(None) == ""
    assert normalize_email("a@" + "b" * 300 + ".com") == ""  # would not fit the column: dropped, not a failed order


def test_phone_becomes_e164_using_the_address_country():
    assert normalize_phone("555-625-1199", "US") == "+15556251199"
    assert normalize_phone("030 901820", "DE") == "+4930901820"
    assert normalize_phone("+44 20 7946 0958", "") == "+442079460958"
    assert normalize_phone("12", "US") == ""
    assert normalize_phone("call me", "US") == ""


def test_country_accepts_codes_and_names():
    assert normalize_country("us") == "US"
    assert normalize_country("DEU") == "DE"
    assert normalize_country("Germany") == "DE"
    assert normalize_country("Atlantis") == ""


def test_postal_codes_take_their_country_shape():
    assert normalize_postal_code("sw1a1aa", "GB") == "SW1A 1AA"
    assert normalize_postal_code("k1a0b1", "CA") == "K1A 0B1"
    assert normalize_postal_code("1234ab", "NL") == "1234 AB"
    assert normalize_postal_code("11000", "CZ") == "110 00"
    assert normalize_postal_code("00950", "PL") == "00-950"
    assert normalize_postal_code("402021234", "US") == "40202-1234"


def test_valid_address_has_no_problems():
    address = normalize_address(
        name="Bob Norman",
        company="",
        line1="Chestnut Street 92",
        line2="",
        city="Louisville",
        region="ky",
        postal_code="40202",
        country_code="US",
        phone="555-625-1199",
    )
    assert address.problems == []
    assert address.region == "KY"
    assert address.phone == "+15556251199"


def test_invalid_address_lists_every_problem():
    address = normalize_address(
        name="",
        company="",
        line1="",
        line2="",
        city="",
        region="",
        postal_code="ABC",
        country_code="US",
        phone="",
    )
    assert "street address missing" in address.problems
    assert "city missing" in address.problems
    assert "recipient name missing" in address.problems
    assert any("postal code" in p for p in address.problems)


def test_unknown_country_is_a_problem():
    address = normalize_address(
        name="A",
        company="",
        line1="x",
        line2="",
        city="y",
        region="",
        postal_code="1",
        country_code="ZZ",
        phone="",
    )
    assert address.problems == ["unknown country 'ZZ'"]


def test_country_without_postal_codes_needs_none():
    address = normalize_address(
        name="A",
        company="",
        line1="1 Main St",
        line2="",
        city="Dublin",
        region="",
        postal_code="",
        country_code="IE",
        phone="",
    )
    assert address.problems == []


@given(st.text(max_size=40), st.sampled_from(["US", "GB", "DE", "NL", "CZ", "JP", ""]))
def test_normalisation_never_raises_and_is_idempotent(raw, country):
    once = normalize_postal_code(raw, country)
    assert normalize_postal_code(once, country) == once
    normalize_phone(raw, country)
    normalize_email(raw)


def test_fingerprint_ignores_case_but_not_content():
    a = normalize_address(
        name="Bob",
        company="",
        line1="Main 1",
        line2="",
        city="X",
        region="",
        postal_code="1000",
        country_code="BE",
        phone="",
    )
    b = normalize_address(
        name="BOB",
        company="",
        line1="main 1",
        line2="",
        city="x",
        region="",
        postal_code="1000",
        country_code="be",
        phone="",
    )
    c = normalize_address(
        name="Bob",
        company="",
        line1="Main 2",
        line2="",
        city="X",
        region="",
        postal_code="1000",
        country_code="BE",
        phone="",
    )
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()

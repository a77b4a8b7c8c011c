"""The XML → Arrow parser on Amazon's own examples, messy values and hostile documents."""

import sys
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from orders_pipeline.sources import values
from orders_pipeline.sources.mws.errors import MwsResponseFormatError
from orders_pipeline.sources.mws.parse import parse_order_items_page, parse_orders_page
from orders_pipeline.sources.mws.records import LIST_TYPE
from orders_pipeline.sources.raw_schema import ORDER_ITEMS_SCHEMA, ORDERS_SCHEMA, TIMESTAMP

FIXTURES = Path(__file__).parent / "fixtures"
NS = "https://mws.amazonservices.com/Orders/2013-09-01"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def orders_body(*orders: str, envelope: str = "") -> bytes:
    return (
        f'<ListOrdersResponse xmlns="{NS}"><ListOrdersResult>{envelope}<Orders>{"".join(orders)}</Orders>'
        "</ListOrdersResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></ListOrdersResponse>"
    ).encode()


def order(order_id: str = "111-0000000-0000001", **elements: str) -> str:
    fields = {"AmazonOrderId": order_id, "LastUpdateDate": "2024-03-03T10:00:00Z", **elements}
    return "<Order>" + "".join(f"<{tag}>{value}</{tag}>" for tag, value in fields.items()) + "</Order>"


def test_amazon_list_orders_example_is_read_with_its_quirks():
    page = parse_orders_page((FIXTURES / "list_orders_doc_example.xml").read_bytes())
    table = page.table
    assert table.schema == ORDERS_SCHEMA
    assert page.next_token == "2YgYW55IGNhcm5hbCBwbGVhc3VyZS4="
    # the echoed bound is percent-encoded in Amazon's example
    assert page.last_updated_before == datetime(2017, 2, 25, 18, 10, 21, 687000, tzinfo=timezone.utc)
    assert page.request_id == "88faca76-b600-46d2-b53c-0c8c4533e43a"
    rows = table.to_pylist()
    assert [row["amazon_order_id"] for row in rows] == ["902-3159896-1390916", "483-3488972-0896720", "058-1233752-8214740"]
    assert rows[0]["order_total_amount"] == Decimal("25.00") and rows[0]["order_total_currency_code"] == "USD"
    assert rows[2]["order_total_amount"] == Decimal("1507.00") and rows[2]["order_total_currency_code"] == "JPY"
    # '20178-02-20T19:49:35Z' cannot be decoded: null plus a flag naming the field and the raw text, order kept
    assert rows[1]["purchase_date"] is None
    assert rows[1]["is_quarantined"] is True
    assert rows[1]["quarantined_fields"] == "purchase_date=20178-02-20T19:49:35Z"
    # '%3A'-encoded timestamps are decoded, not quarantined
    assert rows[2]["purchase_date"] == utc(2017, 2, 5, 0, 6, 7)
    assert rows[2]["last_update_date"] == utc(2017, 2, 7, 12, 43, 16)
    assert rows[2]["is_quarantined"] is False
    # trailing space trimmed
    assert rows[2]["shipment_service_level_category"] == "Standard"
    assert rows[0]["payment_method_details"] == ["CreditCard"]
    assert rows[0]["is_business_order"] is True and rows[0]["is_prime"] is False
    assert rows[0]["latest_ship_date"] == utc(2017, 2, 25, 19, 49, 35)
    assert page.quarantined_values == 1


def test_personal_data_is_not_read_but_geography_is():
    table = parse_orders_page((FIXTURES / "list_orders_doc_example.xml").read_bytes()).table
    text = str(table.to_pylist())
    for personal in ("Buyer name", "1234 Any St.", "Jane Smith", "5vlhEXAMPLEh9h5", "555 555-5555", "Suite 2"):
        assert personal not in text
    assert table.column("shipping_address_city").to_pylist() == ["Seattle", "Sao Paulo", "Tokyo"]
    assert table.column("shipping_address_postal_code").to_pylist() == ["98103", "08474-130", "107-0053"]
    assert table.column("buyer_email_sha256").null_count == 3


def test_buyer_email_is_stored_only_as_a_salted_hash_when_opted_in():
    body = (FIXTURES / "list_orders_doc_example.xml").read_bytes()
    salted = parse_orders_page(body, buyer_email_salt="pepper").table.column("buyer_email_sha256").to_pylist()
    other = parse_orders_page(body, buyer_email_salt="salt2").table.column("buyer_email_sha256").to_pylist()
    assert all(len(value) == 64 for value in salted)
    assert salted != other
    assert "marketplace.amazon" not in str(salted)


def test_amazon_list_order_items_example():
    page = parse_order_items_page((FIXTURES / "list_order_items_doc_example.xml").read_bytes())
    table = page.table
    assert table.schema == ORDER_ITEMS_SCHEMA
    assert page.amazon_order_id == "058-1233752-8214740"
    assert page.next_token == "MRgZW55IGNhcm5hbCBwbGVhc3VyZS6="
    rows = table.to_pylist()
    assert [row["order_item_id"] for row in rows] == ["68828574383266", "79039765272157"]
    assert all(row["amazon_order_id"] == "058-1233752-8214740" for row in rows)
    assert rows[0]["item_price_amount"] == Decimal("25.99") and rows[0]["item_price_currency_code"] == "JPY"
    assert rows[0]["quantity_ordered"] == 1 and rows[1]["quantity_ordered"] == 2
    assert rows[1]["quantity_shipped"] is None
    assert rows[1]["promotion_ids"] == ["FREESHIP"]
    assert rows[1]["tax_collection_responsible_party"] == "Amazon Services, Inc."
    assert rows[0]["points_granted_points_monetary_value_amount"] == Decimal("10.00")
    # '2013-09-09T01:30:00.000-06:00 ' is decoded into UTC; '2013-09-071T02:00...' is quarantined
    assert rows[0]["scheduled_delivery_end_date"] == utc(2013, 9, 9, 7, 30)
    assert rows[0]["scheduled_delivery_start_date"] is None
    assert rows[0]["quarantined_fields"].startswith("scheduled_delivery_start_date=2013-09-071")
    assert "For you!" not in str(rows)  # gift messages are personal: not stored


@pytest.mark.parametrize(
    ("element", "raw", "column", "expected"),
    [
        ("NumberOfItemsShipped", " 2 ", "number_of_items_shipped", 2),
        ("IsPrime", "TRUE", "is_prime", True),
        ("LastUpdateDate", "2024-03-03T10%3A00%3A00.000Z", "last_update_date", datetime(2024, 3, 3, 10, tzinfo=timezone.utc)),
        ("PurchaseDate", "2024-03-03T10:00:00", "purchase_date", datetime(2024, 3, 3, 10, tzinfo=timezone.utc)),
        ("SalesChannel", "Amazon.com\n        ", "sales_channel", "Amazon.com"),
    ],
)
def test_messy_but_decodable_values_are_decoded(element, raw, column, expected):
    table = parse_orders_page(orders_body(order(**{element: raw}))).table
    assert table.column(column).to_pylist() == [expected]
    assert table.column("is_quarantined").to_pylist() == [False]


@pytest.mark.parametrize(
    ("element", "raw", "column"),
    [
        ("NumberOfItemsShipped", "two", "number_of_items_shipped"),
        ("IsPrime", "maybe", "is_prime"),
        ("EarliestShipDate", "yesterday", "earliest_ship_date"),
    ],
)
def test_undecodable_values_are_null_and_flagged_and_the_order_is_kept(element, raw, column):
    body = orders_body(order("111-0000000-0000001", **{element: raw}), order("111-0000000-0000002"))
    table = parse_orders_page(body).table
    assert table.num_rows == 2
    assert table.column(column).to_pylist() == [None, None]
    assert table.column("is_quarantined").to_pylist() == [True, False]
    assert table.column("quarantined_fields").to_pylist()[0] == f"{column}={raw}"


def test_money_with_more_than_two_places_is_quarantined_not_rounded():
    body = orders_body(order(OrderTotal="<CurrencyCode>USD</CurrencyCode><Amount>10.005</Amount>"))
    row = parse_orders_page(body).table.to_pylist()[0]
    assert row["order_total_amount"] is None
    assert row["order_total_currency_code"] == "USD"
    assert row["quarantined_fields"] == "order_total_amount=10.005"


def test_unknown_elements_are_ignored():
    table = parse_orders_page(orders_body(order(BrandNewElement="x", OrderStatus="Shipped"))).table
    assert table.column("order_status").to_pylist() == ["Shipped"]


def test_empty_orders_list_gives_an_empty_table_with_the_full_schema():
    page = parse_orders_page(orders_body(envelope="<LastUpdatedBefore>2024-03-04T00:00:00Z</LastUpdatedBefore>"))
    assert page.table.num_rows == 0
    assert page.table.schema == ORDERS_SCHEMA
    assert page.last_updated_before == datetime(2024, 3, 4, tzinfo=timezone.utc)
    assert page.next_token is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "expected a ListOrders"),
        (b"not xml at all", "not well-formed XML"),
        (orders_body(order())[:150], "not well-formed XML"),
        (orders_body("<Order><LastUpdateDate>2024-03-03T10:00:00Z</LastUpdateDate></Order>"), "AmazonOrderId"),
        (orders_body(order() + order(" \u00a0\t")), "AmazonOrderId"),  # blank as str.strip() sees it
        (orders_body(order()).replace(b"<Orders>", b"<Ordres>").replace(b"</Orders>", b"</Ordres>"), "no <Orders>"),
        (orders_body(envelope="<LastUpdatedBefore>soon</LastUpdatedBefore>"), "not a timestamp"),
    ],
)
def test_malformed_bodies_raise_one_clear_error(body, message):
    with pytest.raises(MwsResponseFormatError, match=message):
        parse_orders_page(body)


def test_external_entities_are_refused_without_reading_files(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>'
        f'<ListOrdersResponse xmlns="{NS}"><ListOrdersResult><Orders><Order><AmazonOrderId>&x;</AmazonOrderId>'
        "<LastUpdateDate>2024-03-03T10:00:00Z</LastUpdateDate></Order></Orders></ListOrdersResult></ListOrdersResponse>"
    ).encode()
    with pytest.raises(MwsResponseFormatError, match="DTD") as error:
        parse_orders_page(body)
    assert "TOP-SECRET" not in str(error.value)


def test_entity_expansion_bomb_is_refused():
    entities = '<!ENTITY a "aaaaaaaaaa">' + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
    body = f'<?xml version="1.0"?><!DOCTYPE r [{entities}]><r>&i;</r>'.encode()
    with pytest.raises(MwsResponseFormatError, match="DTD"):
        parse_orders_page(body)


def test_absurdly_deep_nesting_is_refused():
    body = b"<a>" * 5000 + b"</a>" * 5000
    with pytest.raises(MwsResponseFormatError):
        parse_orders_page(body)


def test_timestamps_are_microsecond_utc_and_money_is_decimal():
    assert ORDERS_SCHEMA.field("purchase_date").type == TIMESTAMP == pa.timestamp("us", tz="UTC")
    assert pa.types.is_decimal(ORDERS_SCHEMA.field("order_total_amount").type)
    assert pa.types.is_integer(ORDER_ITEMS_SCHEMA.field("quantity_ordered").type)


def test_quarantined_values_are_counted_per_value_not_per_order():
    page = parse_orders_page(orders_body(order(IsPrime="maybe", NumberOfItemsShipped="two"), order("111-0000000-0000002")))
    assert page.quarantined_values == 2
    assert page.table.column("is_quarantined").to_pylist() == [True, False]
    assert page.table.column("quarantined_fields").to_pylist()[0] == "number_of_items_shipped=two; is_prime=maybe"


def test_list_members_are_cleaned_as_str_strip_cleans_them():
    assert set(values._WHITESPACE) == {chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace()}
    messy = pa.array([["a", " b\u00a0", None, "\u3000", ""], None, [], ["c\u2028"]], LIST_TYPE)
    assert values._clean_lists(messy).to_pylist() == [["a", "b"], None, [], ["c"]]
    clean = pa.array([["a"], None, [], ["b c", "d"]], LIST_TYPE)
    assert values._clean_lists(clean) is clean  # nothing to clean: no copy through Python

"""The Reports bulk path over real HTTP against the simulator, and the flat-file mapping on a sample."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orders_pipeline.sources.raw_schema import ORDER_ITEMS_SCHEMA, ORDERS_SCHEMA
from orders_pipeline.simulator import Faults, MwsSimulator, SimulatorConfig
from orders_pipeline.sources.sp_api.report_tsv import read_report
from orders_pipeline.sources.sp_api.reports import SpApiReportsClient, report_windows
from orders_pipeline.sources.sp_api.errors import SpApiConnectionError, SpApiReportError
from tests.sp_api_support import DAY, FAST, NEXT_DAY, NOW, by_version, pick, search_day, sp_client_for

REPORT_ORDER_COLUMNS = [
    "amazon_order_id", "purchase_date", "last_update_date", "order_status", "fulfillment_channel", "sales_channel",
    "shipment_service_level_category", "is_business_order", "is_quarantined",
]
REPORT_ITEM_COLUMNS = [
    "amazon_order_id", "order_last_update_date", "asin", "seller_sku", "title", "quantity_ordered",
    "item_price_amount", "item_price_currency_code", "item_tax_amount", "shipping_price_amount",
    "shipping_tax_amount", "promotion_discount_amount", "shipping_discount_amount", "promotion_ids",
]
NOT_IN_REPORT = {  # what a report-sourced day cannot fill
    "orders": ["order_total_amount", "number_of_items_shipped", "number_of_items_unshipped", "is_prime",
               "earliest_ship_date", "latest_ship_date"],
    "order_items": ["quantity_shipped"],
}


def _simulator(**config) -> MwsSimulator:
    return MwsSimulator(SimulatorConfig(**{"time_scale": FAST, "clock": lambda: NOW, **config}))


def test_a_day_through_a_report_gives_the_search_orders_rows_except_what_a_report_cannot_know():
    with _simulator(orders_per_day=150) as sim:
        client = sp_client_for(sim)
        reports = list(SpApiReportsClient(client, poll_seconds=0.005).orders_reports(DAY, NEXT_DAY))
        searched, searched_items, _ = search_day(client)
    assert len(reports) == 1
    tables = reports[0].tables
    assert tables.orders.schema == ORDERS_SCHEMA and tables.items.schema == ORDER_ITEMS_SCHEMA
    assert reports[0].waited_seconds > 0 and tables.malformed_rows == 0
    stats = client.stats.as_metadata()
    assert stats["calls_createReport"] == 1 and stats["calls_getReportDocument"] == 1 and stats["calls_getReport"] >= 2
    report, search = by_version(tables.orders.to_pylist()), by_version(searched)
    assert report.keys() == search.keys()
    assert [pick(report[key], REPORT_ORDER_COLUMNS) for key in report] == [pick(search[key], REPORT_ORDER_COLUMNS) for key in report]
    amazon = [key for key in report if search[key]["sales_channel"] != "Non-Amazon"]
    assert amazon and all(report[key]["marketplace_id"] == search[key]["marketplace_id"] for key in amazon)
    for key in report:
        assert all(report[key][column] is None for column in NOT_IN_REPORT["orders"])
    items = tables.items.to_pylist()
    by_sku = {(row["amazon_order_id"], row["seller_sku"]): row for row in searched_items}
    assert len(items) == len(searched_items)
    for row in items:
        assert pick(row, REPORT_ITEM_COLUMNS) == pick(by_sku[(row["amazon_order_id"], row["seller_sku"])], REPORT_ITEM_COLUMNS)
        assert row["order_item_id"] == f"{row['amazon_order_id']}/{row['seller_sku']}"
        assert all(row[column] is None for column in NOT_IN_REPORT["order_items"])


def test_a_range_longer_than_30_days_is_split_into_reports_of_at_most_30_days():
    start = NOW - timedelta(days=45)
    assert report_windows(start, NOW) == [(start, start + timedelta(days=30)), (start + timedelta(days=30), NOW)]
    with _simulator(orders_per_day=5) as sim:
        client = sp_client_for(sim)
        reports = list(SpApiReportsClient(client, poll_seconds=0.005).orders_reports(start, NOW))
    assert [(r.data_start, r.data_end) for r in reports] == [(start, start + timedelta(days=30)),
                                                            (start + timedelta(days=30), NOW - timedelta(minutes=2))]
    assert client.stats.calls["createReport"] == 2 and all(r.tables.orders.num_rows > 0 for r in reports)


@pytest.mark.parametrize("outcome", ["FATAL", "CANCELLED"])
def test_a_report_that_ends_fatal_or_cancelled_is_a_clear_failure(outcome):
    with _simulator(faults=Faults(report_outcome=outcome)) as sim:
        client = sp_client_for(sim)
        with pytest.raises(SpApiReportError) as raised:
            list(SpApiReportsClient(client, poll_seconds=0.005).orders_reports(DAY, NEXT_DAY))
    message = str(raised.value)
    assert f"ended {outcome}" in message and "nothing was written" in message and "\n" not in message
    assert "x-amzn-RequestId " in message and "getReportDocument" not in client.stats.calls


def test_a_failed_document_download_is_retried_with_a_fresh_link():
    with _simulator() as healthy:
        expected = SpApiReportsClient(sp_client_for(healthy), poll_seconds=0.005).orders_report(DAY, NEXT_DAY)
    with _simulator(faults=Faults(failed_downloads=2)) as sim:
        client = sp_client_for(sim)
        report = SpApiReportsClient(client, poll_seconds=0.005).orders_report(DAY, NEXT_DAY)
        downloads = sim.stats.requests_by_action["downloadReportDocument"]
    assert report.tables.orders.equals(expected.tables.orders) and report.tables.items.equals(expected.tables.items)
    assert downloads == 3 and client.stats.calls["getReportDocument"] == 3  # a fresh link for every try


def test_a_document_download_failing_every_time_is_one_clear_line():
    with _simulator(faults=Faults(failed_downloads=100)) as sim:
        client = sp_client_for(sim)
        with pytest.raises(SpApiConnectionError) as raised:
            SpApiReportsClient(client, poll_seconds=0.005).orders_report(DAY, NEXT_DAY)
        downloads = sim.stats.requests_by_action["downloadReportDocument"]
    assert "failed 3 times" in str(raised.value) and "HTTP 503" in str(raised.value) and "\n" not in str(raised.value)
    assert downloads == 3


def test_a_report_still_processing_past_the_wait_allowed_fails_naming_its_state():
    with _simulator(report_processing_seconds=3600.0 * FAST) as sim:
        client = sp_client_for(sim)
        with pytest.raises(SpApiReportError, match=r"still IN_(QUEUE|PROGRESS) after \d+s"):
            SpApiReportsClient(client, poll_seconds=0.01, max_wait_seconds=0.05).orders_report(DAY, NEXT_DAY)


def test_messy_report_values_are_quarantined_not_fatal():
    with _simulator(orders_per_day=1000, faults=Faults(messy_values=True)) as sim:
        client = sp_client_for(sim)
        report = SpApiReportsClient(client, poll_seconds=0.005).orders_report(DAY, NEXT_DAY)
    orders = report.tables.orders.to_pylist()
    quarantined = [row for row in orders if row["is_quarantined"]]
    assert quarantined and all("purchase_date=20244-" in row["quarantined_fields"] for row in quarantined)
    assert all(row["purchase_date"] is not None for row in orders if not row["is_quarantined"])
    assert {row["shipment_service_level_category"] for row in orders} <= {
        "Standard", "Expedited", "SecondDay", "NextDay", "FreeEconomy"}


SAMPLE_HEADER = (
    "amazon-order-id\tmerchant-order-id\tpurchase-date\tlast-updated-date\torder-status\tfulfillment-channel\t"
    "sales-channel\torder-channel\turl\tship-service-level\tproduct-name\tsku\tasin\titem-status\tquantity\tcurrency\t"
    "item-price\titem-tax\tshipping-price\tshipping-tax\tgift-wrap-price\tgift-wrap-tax\titem-promotion-discount\t"
    "ship-promotion-discount\tship-city\tship-state\tship-postal-code\tship-country\tpromotion-ids\t"
    "is-business-order\tpurchase-order-number\tprice-designation"
)


def _line(order_id, updated, status, channel, sales, sku, quantity, price, promotions="") -> str:
    return "\t".join([
        order_id, "", "2024-03-01T10:00:00+00:00", updated, status, channel, sales, "", "", "Standard", "Widget \"XL\"",
        sku, "B00TEST", "Shipped", quantity, "EUR", price, "0.80", "", "", "", "", "", "", "Berlin", "BE", "10115", "DE",
        promotions, "false", "", "",
    ])


def test_the_flat_file_maps_to_one_order_per_version_and_keyed_items():
    tsv = "\n".join([
        SAMPLE_HEADER,
        _line("302-1", "2024-03-02T10:00:00+00:00", "Shipped", "Amazon", "Amazon.de", "SKU-A", "2", "39.98", "P1,P2"),
        _line("302-1", "2024-03-02T10:00:00+00:00", "Shipped", "Amazon", "Amazon.de", "SKU-B", "1", "5.00"),
        _line("302-1", "2024-03-02T10:00:00+00:00", "Shipped", "Amazon", "Amazon.de", "SKU-A", "1", "19.99"),
        _line("302-2", "2024-03-02T11:00:00+00:00", "Cancelled", "Merchant", "Non-Amazon", "SKU-B", "two", "1.2.3"),
        "a\tline\twith\ttoo\tfew\tfields",
    ]).encode()
    tables = read_report(tsv, ["A1PA6795UKMFR9"])
    orders, items = tables.orders.to_pylist(), tables.items.to_pylist()
    assert [(o["amazon_order_id"], o["order_status"], o["fulfillment_channel"], o["marketplace_id"]) for o in orders] == [
        ("302-1", "Shipped", "AFN", "A1PA6795UKMFR9"), ("302-2", "Canceled", "MFN", "A1PA6795UKMFR9")]
    assert [i["order_item_id"] for i in items] == ["302-1/SKU-A", "302-1/SKU-B", "302-1/SKU-A/2", "302-2/SKU-B"]
    assert [str(i["item_price_amount"]) for i in items[:3]] == ["39.98", "5.00", "19.99"]
    assert items[0]["promotion_ids"] == ["P1", "P2"] and items[0]["title"] == 'Widget "XL"'
    assert items[0]["shipping_price_amount"] is None and items[0]["shipping_price_currency_code"] is None
    assert items[3]["is_quarantined"] and items[3]["quarantined_fields"] == "quantity_ordered=two; item_price_amount=1.2.3"
    assert tables.malformed_rows == 1 and tables.quarantined_values == 2

"""searchOrders JSON → raw rows on Amazon's model example, and hostile JSON refused over real HTTP."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orders_pipeline.sources.personal_data import hash_buyer_email
from orders_pipeline.sources.sp_api.client import SpApiOrdersClient
from orders_pipeline.sources.sp_api.errors import SpApiResponseFormatError
from orders_pipeline.sources.sp_api.lwa import LwaCredentials, LwaTokenClient
from orders_pipeline.sources.sp_api.orders_json import map_orders
from orders_pipeline.sources.sp_api.transport import MAX_BODY_BYTES, MAX_JSON_DEPTH
from tests.sp_api_support import DAY, NEXT_DAY, NOW

EXAMPLE = json.loads((Path(__file__).parent / "fixtures" / "search_orders_2026_model_example.json").read_text())


def test_the_model_example_maps_to_mws_spellings_and_line_totals():
    mapped = map_orders(EXAMPLE["orders"], buyer_email_salt="salt")
    order = mapped.orders.to_pylist()[0]
    assert (order["order_status"], order["fulfillment_channel"], order["sales_channel"]) == ("Shipped", "MFN", "Amazon.com")
    assert order["seller_order_id"] == "SELLER-ORDER-2024-001" and order["replaced_order_id"] == "123-4567890-1234566"
    assert order["is_prime"] and order["is_business_order"] and not order["is_premium_order"]
    assert order["order_total_amount"] == Decimal("154.99") and order["number_of_items_shipped"] == 3
    assert order["buyer_email_sha256"] == hash_buyer_email("buyer-email@marketplace.amazon.com", "salt")
    assert order["shipping_address_postal_code"] == "98101" and order["shipment_service_level_category"] == "Standard"
    first, second = mapped.items.to_pylist()
    assert first["item_price_amount"] == Decimal("99.98")  # the ITEM proceeds of 2 units, not the 49.99 unit price
    assert first["item_tax_amount"] == Decimal("0.02") and first["promotion_ids"] == ["PROMO-HOLIDAY-2024"]
    assert first["order_last_update_date"] == order["last_update_date"] and first["price_designation"] == "BusinessPrice"
    assert second["item_price_amount"] == Decimal("49.99") and mapped.quarantined_values == 0


def test_unit_price_times_quantity_when_only_a_unit_price_is_given_and_junk_is_quarantined():
    order = json.loads(json.dumps(EXAMPLE["orders"][0]))
    for item in order["orderItems"]:
        del item["proceeds"]
    order["orderItems"][1]["quantityOrdered"] = "lots"
    order["fulfillment"]["fulfillmentStatus"] = "CANCELLED"
    order["salesChannel"]["channelName"] = "NON_AMAZON"
    order["lastUpdatedTime"] = "yesterday"
    mapped = map_orders([order])
    row = mapped.orders.to_pylist()[0]
    first, second = mapped.items.to_pylist()
    assert (row["order_status"], row["sales_channel"], row["buyer_email_sha256"]) == ("Canceled", "Non-Amazon", None)
    assert row["last_update_date"] is None and row["quarantined_fields"] == "last_update_date=yesterday"
    assert first["item_price_amount"] == Decimal("99.98")
    assert second["item_price_amount"] is None and second["quantity_ordered"] is None
    assert second["quarantined_fields"] == (
        "order_last_update_date=yesterday; quantity_ordered=lots; item_price_amount=49.99 x lots")


def test_fields_of_the_wrong_json_type_are_left_out_or_quarantined_never_a_crash():
    order = json.loads(json.dumps(EXAMPLE["orders"][0]))
    order.update(orderAliases=5, associatedOrders="x", programs=7, salesChannel=[])
    order["orderItems"][0].update(proceeds={"breakdowns": 3}, tax={"taxCollections": 1}, promotion={"breakdowns": None})
    order["orderItems"][1].update(product=None, quantityOrdered=True)
    mapped = map_orders([order])
    row = mapped.orders.to_pylist()[0]
    first, second = mapped.items.to_pylist()
    assert row["seller_order_id"] is None and row["sales_channel"] is None and row["is_prime"] is False
    assert first["item_price_amount"] == Decimal("99.98")  # no ITEM proceeds: the unit price x 2
    assert first["promotion_ids"] is None and first["tax_collection_model"] is None
    assert second["asin"] is None and second["quarantined_fields"] == "quantity_ordered=true"


def test_an_order_without_its_id_is_a_format_error():
    order = {key: value for key, value in EXAMPLE["orders"][0].items() if key != "orderId"}
    with pytest.raises(SpApiResponseFormatError, match="has no orderId"):
        map_orders([order])


class _Hostile(BaseHTTPRequestHandler):
    """An endpoint that issues tokens and answers searchOrders with whatever `body` the server holds."""

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._send(json.dumps({"access_token": "Atza|x", "token_type": "bearer", "expires_in": 3600}).encode())

    def do_GET(self) -> None:  # noqa: N802
        body = self.server.body  # type: ignore[attr-defined]
        if isinstance(body, dict):  # one body per page: keyed by whether a paginationToken came
            body = body["next" if "paginationToken=" in self.path else "first"]
        if callable(body):
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                for chunk in body():
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        self._send(body)

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", "rid-hostile")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@contextmanager
def _hostile_server(body) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.body = body  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _search(url: str) -> None:
    tokens = LwaTokenClient(LwaCredentials("app", "secret-value", "refresh-value"), f"{url}/auth/o2/token")
    client = SpApiOrdersClient(url, tokens, ["ATVPDKIKX0DER"], now=lambda: NOW)
    list(client.search_orders(DAY, NEXT_DAY))


def _endless() -> Iterator[bytes]:
    yield b'{"orders": ["'
    while True:
        yield b"x" * (1 << 20)


@pytest.mark.parametrize(
    ("body", "refusal"),
    [
        (b'{"orders": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", f"nested deeper than {MAX_JSON_DEPTH} levels"),
        (b'{"orders": [' + b'{"a":' * 40 + b"1" + b"}" * 40 + b"]}", f"nested deeper than {MAX_JSON_DEPTH} levels"),
        (b'{"orders": [' + b" " * (MAX_BODY_BYTES + 10) + b"]}", f"more than {MAX_BODY_BYTES:,} bytes"),
        (_endless, f"more than {MAX_BODY_BYTES:,} bytes"),
        (b'{"orders": [{"orderId": "1"', "is not JSON"),
    ],
    ids=["deeply-nested", "nested-past-the-cap", "declared-huge", "endless-stream", "truncated"],
)
def test_hostile_json_is_refused_with_a_clear_error(body, refusal):
    with _hostile_server(body) as url:
        with pytest.raises(SpApiResponseFormatError) as raised:
            _search(url)
    message = str(raised.value)
    assert refusal in message and "searchOrders" in message and "\n" not in message


def test_an_order_version_repeated_on_a_later_page_is_kept_once():
    order = EXAMPLE["orders"][0]
    other = {**order, "orderId": "123-4567890-7654321"}
    pages = {
        "first": json.dumps({"orders": [order], "pagination": {"nextToken": "t1"},
                             "lastUpdatedBefore": "2024-03-04T00:00:00Z"}).encode(),
        "next": json.dumps({"orders": [order, other], "lastUpdatedBefore": "2024-03-04T00:00:00Z"}).encode(),
    }
    with _hostile_server(pages) as url:
        tokens = LwaTokenClient(LwaCredentials("app", "secret-value", "refresh-value"), f"{url}/auth/o2/token")
        client = SpApiOrdersClient(url, tokens, ["ATVPDKIKX0DER"], now=lambda: NOW)
        rows = [row for page in client.search_orders(DAY, NEXT_DAY) for row in page.orders.to_pylist()]
        items = [row for page in client.search_orders(DAY, NEXT_DAY) for row in page.items.to_pylist()]
    assert [row["amazon_order_id"] for row in rows] == ["123-4567890-1234567", "123-4567890-7654321"]
    assert len(items) == 4 and client.stats.duplicates_dropped == 2

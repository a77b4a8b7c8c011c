"""The SP-API client over real HTTP against the simulator's SP-API face: LWA, searchOrders, getOrder, faults."""

from __future__ import annotations

import pytest

from orders_pipeline.sources.raw_schema import ORDER_ITEMS_SCHEMA, ORDERS_SCHEMA
from orders_pipeline.simulator import DEMO_SP_API_CREDENTIALS, Faults, MwsSimulator, SimulatorConfig
from orders_pipeline.sources.sp_api.client import INCLUDED_DATA, SpApiOrdersClient
from orders_pipeline.sources.sp_api.errors import SpApiAuthError, SpApiRequestError
from orders_pipeline.sources.sp_api.lwa import LwaCredentials, LwaTokenClient
from tests.sp_api_support import (
    DAY,
    FAST,
    NEXT_DAY,
    NOW,
    by_version,
    lwa_for,
    mws_client_for,
    mws_day,
    pick,
    search_day,
    sp_client_for,
)

SHARED_ORDER_COLUMNS = [
    "amazon_order_id", "purchase_date", "last_update_date", "order_status", "fulfillment_channel", "sales_channel",
    "shipment_service_level_category", "order_type", "marketplace_id", "order_total_amount",
    "order_total_currency_code", "number_of_items_shipped", "number_of_items_unshipped", "is_replacement_order",
    "replaced_order_id", "earliest_ship_date", "latest_ship_date", "earliest_delivery_date", "latest_delivery_date",
    "is_business_order", "is_prime", "is_premium_order", "is_quarantined",
]
SHARED_ITEM_COLUMNS = [
    "amazon_order_id", "order_last_update_date", "order_item_id", "asin", "seller_sku", "title", "quantity_ordered",
    "quantity_shipped", "item_price_amount", "item_price_currency_code", "shipping_price_amount", "item_tax_amount",
    "shipping_tax_amount", "promotion_discount_amount", "shipping_discount_amount", "promotion_ids",
    "tax_collection_model", "tax_collection_responsible_party", "condition_id", "condition_subtype_id",
]


def _simulator(**config) -> MwsSimulator:
    return MwsSimulator(SimulatorConfig(**{"time_scale": FAST, "clock": lambda: NOW, **config}))


def test_a_day_through_search_orders_gives_the_same_rows_as_through_mws():
    with _simulator(orders_per_day=150) as sim:
        client = sp_client_for(sim)
        orders, items, pages = search_day(client)
        mws_orders, mws_items = mws_day(mws_client_for(sim))
        truth = sim.expected_orders(DAY, NEXT_DAY)
    assert pages[0].orders.schema == ORDERS_SCHEMA and pages[0].items.schema == ORDER_ITEMS_SCHEMA
    assert len(orders) == len(truth) > 100 and len(pages) == 2
    assert {row["amazon_order_id"] for row in orders} == {order["amazon_order_id"] for order in truth}
    sp, mws = by_version(orders), by_version(mws_orders)
    assert sp.keys() == mws.keys()
    assert [pick(sp[key], SHARED_ORDER_COLUMNS) for key in sp] == [pick(mws[key], SHARED_ORDER_COLUMNS) for key in sp]
    assert {row["order_status"] for row in orders} >= {"Shipped", "Canceled", "Pending", "Unshipped"}
    assert {row["fulfillment_channel"] for row in orders} == {"AFN", "MFN"}
    assert "Non-Amazon" in {row["sales_channel"] for row in orders}
    mws_by_item = {(row["amazon_order_id"], row["order_item_id"]): row for row in mws_items}
    assert len(items) == len(mws_items) > len(orders)
    for row in items:
        assert pick(row, SHARED_ITEM_COLUMNS) == pick(mws_by_item[(row["amazon_order_id"], row["order_item_id"])], SHARED_ITEM_COLUMNS)
    assert client.last_covered_until == NEXT_DAY
    assert client.stats.as_metadata()["calls_searchOrders"] == 2 and client.stats.throttled_responses == 0


def test_no_personal_data_unless_opted_in_then_the_mws_email_hash():
    with _simulator() as sim:
        orders, _, _ = search_day(sp_client_for(sim))
        salt = "pepper"
        opted, _, _ = search_day(sp_client_for(sim, include_personal_data=True, buyer_email_salt=salt))
        mws_orders = [row for page in mws_client_for(sim, buyer_email_salt=salt).list_orders(DAY, NEXT_DAY)
                      for row in page.table.to_pylist()]
    assert "BUYER" not in INCLUDED_DATA and "RECIPIENT" not in INCLUDED_DATA
    assert all(row["buyer_email_sha256"] is None and row["shipping_address_postal_code"] is None for row in orders)
    hashed = {row["amazon_order_id"]: row["buyer_email_sha256"] for row in opted}
    assert any(hashed.values())
    assert hashed == {row["amazon_order_id"]: row["buyer_email_sha256"] for row in mws_orders}
    geography = ["shipping_address_city", "shipping_address_state_or_region", "shipping_address_postal_code",
                 "shipping_address_country_code", "shipping_address_address_type", "purchase_order_number"]
    mws = by_version(mws_orders)
    assert [pick(row, geography) for row in opted] == [pick(mws[key], geography) for key in by_version(opted)]


def test_the_token_is_refreshed_after_a_403_expired_mid_run():
    # request 1 is the token, 2 the first page, 3 the second page: its token expires on arrival
    with _simulator(orders_per_day=250, faults=Faults(expire_token_request_numbers=frozenset({3}))) as sim:
        client = sp_client_for(sim)
        orders, _, pages = search_day(client)
        truth = sim.expected_orders(DAY, NEXT_DAY)
    assert len(pages) == 3 and len(orders) == len(truth)
    stats = client.stats.as_metadata()
    assert stats["expired_token_responses"] == 1 and stats["token_refreshes"] == 2
    assert stats["calls_searchOrders"] == 4


def test_the_token_is_refreshed_shortly_before_expires_in_runs_out():
    now = [0.0]
    with _simulator() as sim:
        demo = DEMO_SP_API_CREDENTIALS
        tokens = LwaTokenClient(
            LwaCredentials(demo.app_id, demo.client_secret, demo.refresh_token), f"{sim.url}/auth/o2/token",
            clock=lambda: now[0],
        )
        first = tokens.access_token()
        now[0] = 3600 - 61  # the simulator says expires_in 3600; renewal starts 60 s before
        assert tokens.access_token() == first
        now[0] = 3600 - 59
        second = tokens.access_token()
    assert second != first and second.startswith("Atza|") and tokens.refreshes == 2


@pytest.mark.parametrize(
    ("override", "code", "fix"),
    [
        ({"client_secret": "amzn1.oa2-cs.v1.wrong-secret"}, "invalid_client", "check LWA_APP_ID / LWA_CLIENT_SECRET"),
        ({"app_id": "amzn1.application-oa2-client.wrong"}, "invalid_client", "check LWA_APP_ID / LWA_CLIENT_SECRET"),
        ({"refresh_token": "Atzr|revoked-refresh-token"}, "invalid_grant", "authorize the app again"),
    ],
)
def test_wrong_credentials_fail_in_one_line_naming_the_fix_without_secrets(override, code, fix):
    with _simulator() as sim:
        client = sp_client_for(sim, tokens=lwa_for(sim, **override))
        with pytest.raises(SpApiAuthError) as raised:
            list(client.search_orders(DAY, NEXT_DAY))
        calls = sim.stats.requests_by_action.get("searchOrders", 0)
    message = str(raised.value)
    assert raised.value.code == code and fix in message and "x-amzn-RequestId " in message
    assert "\n" not in message and calls == 0
    secrets = [override.get(name) for name in ("client_secret", "refresh_token") if name in override]
    secrets += [DEMO_SP_API_CREDENTIALS.client_secret, DEMO_SP_API_CREDENTIALS.refresh_token]  # the app id is no secret
    for text in (message, repr(raised.value), repr(client), repr(client.transport.tokens)):
        assert not any(secret in text for secret in secrets)


def test_429_storms_wait_for_the_bucket_and_lose_nothing():
    # another process drains the buckets now and then, and this client believes in a 20x faster quota clock
    with _simulator(orders_per_day=3000, faults=Faults(external_throttle=True)) as sim:
        client = sp_client_for(sim, time_scale=FAST * 20)
        orders, _, pages = search_day(client)
        truth = sim.expected_orders(DAY, NEXT_DAY)
    assert len(orders) == len(truth) and len(pages) == -(-len(truth) // 100)
    assert client.stats.throttled_responses > 0
    assert client.stats.as_metadata()["calls_searchOrders"] == len(pages) + client.stats.throttled_responses


def test_past_the_burst_the_usage_plan_paces_calls_without_a_single_429():
    with _simulator(orders_per_day=3000) as sim:
        client = sp_client_for(sim)
        _, _, pages = search_day(client)
    assert len(pages) > 20 and client.stats.throttled_responses == 0
    assert client.stats.throttle_wait_seconds > 0  # the pages past the burst of 20 each wait for a token


def test_a_slow_first_search_does_not_make_the_first_paced_call_early():
    # the first searchOrders reaches the server's bucket 1 s after the client spent its token (request 1 is LWA's):
    # the server's full bucket starts restoring then, the client's at the send, 2/3 of a token ahead without settling
    # (a 1.5 s restore at x120; the timeline is built first so the server's own work does not refill it meanwhile)
    slow = Faults(slow_request_numbers=frozenset({2}), slow_seconds=1.0)
    with _simulator(orders_per_day=2600, time_scale=120, faults=slow) as sim:
        sim.expected_orders(DAY, NEXT_DAY)
        client = sp_client_for(sim, time_scale=120)
        _, _, pages = search_day(client)
        throttled = sim.stats.throttled
    assert len(pages) > 21 and sim.stats.faults_injected == 1
    assert throttled == 0 and client.stats.throttled_responses == 0


def test_a_shortened_window_continues_from_the_echoed_bound():
    with _simulator(orders_per_day=150, faults=Faults(truncate_window_hours=6)) as sim:
        client = sp_client_for(sim)
        orders, _, pages = search_day(client)
        truth = sim.expected_orders(DAY, NEXT_DAY)
    assert sorted(row["amazon_order_id"] for row in orders) == sorted(order["amazon_order_id"] for order in truth)
    assert len({page.last_updated_before for page in pages}) == 4  # 0-6, 6-12, 12-18, 18-24 h
    assert client.last_covered_until == NEXT_DAY


def test_duplicates_across_pages_keep_each_order_version_once():
    with _simulator(orders_per_day=400, faults=Faults(duplicate_across_pages=True)) as sim:
        client = sp_client_for(sim)
        orders, items, _ = search_day(client)
        truth = sim.expected_orders(DAY, NEXT_DAY)
    versions = [(row["amazon_order_id"], row["last_update_date"]) for row in orders]
    assert len(versions) == len(set(versions)) > len(truth)  # older versions came too, each once
    latest: dict[str, dict] = {}
    for row in orders:
        if row["amazon_order_id"] not in latest or row["last_update_date"] > latest[row["amazon_order_id"]]["last_update_date"]:
            latest[row["amazon_order_id"]] = row
    assert {order_id: row["order_status"] for order_id, row in latest.items()} == {
        order["amazon_order_id"]: order["order_status"] for order in truth
    }
    item_versions = [(row["amazon_order_id"], row["order_last_update_date"], row["order_item_id"]) for row in items]
    assert len(item_versions) == len(set(item_versions))


def test_messy_values_become_null_and_quarantined_never_a_crash():
    with _simulator(orders_per_day=1000, faults=Faults(messy_values=True)) as sim:
        client = sp_client_for(sim)
        orders, _, pages = search_day(client)
        truth = {order["amazon_order_id"]: order for order in sim.expected_orders(DAY, NEXT_DAY)}
    quarantined = [row for row in orders if row["is_quarantined"]]
    assert quarantined and sum(page.quarantined_values for page in pages) >= len(quarantined)
    assert all(row["purchase_date"] is None and "purchase_date=20244-" in row["quarantined_fields"] for row in quarantined)
    assert len(orders) == len(truth)
    decoded = [row for row in orders if not row["is_quarantined"]]
    assert all(row["purchase_date"] == truth[row["amazon_order_id"]]["purchase_date"] for row in decoded)
    assert all(row["latest_ship_date"] == truth[row["amazon_order_id"]]["latest_ship_date"] for row in orders)
    assert {row["shipment_service_level_category"] for row in orders} <= {
        "Standard", "Expedited", "SecondDay", "NextDay", "FreeEconomy"}


def test_server_errors_are_retried_and_other_4xx_are_not():
    faults = Faults(fail_request_numbers=frozenset({2}), internal_error_request_numbers=frozenset({3}))
    with _simulator(faults=faults) as sim:
        client = sp_client_for(sim, backoff_base=0.01)
        orders, _, _ = search_day(client)
        bad = SpApiOrdersClient(sim.url, lwa_for(sim), ["A1NOTAMARKET"], now=lambda: NOW)
        with pytest.raises(SpApiRequestError) as raised:
            list(bad.search_orders(DAY, NEXT_DAY))
    assert orders and client.stats.server_errors == 2 and client.stats.retries == 2
    assert bad.stats.calls == {"searchOrders": 1}
    assert "InvalidInput" in str(raised.value) and "SP_API_MARKETPLACE_IDS" in str(raised.value)


def test_get_order_answers_one_order_with_its_items():
    with _simulator() as sim:
        truth = sim.expected_orders(DAY, NEXT_DAY)[0]
        page = sp_client_for(sim).get_order(truth["amazon_order_id"])
    order = page.orders.to_pylist()
    assert [row["amazon_order_id"] for row in order] == [truth["amazon_order_id"]]
    assert order[0]["last_update_date"] == truth["last_update_date"]
    assert [row["order_item_id"] for row in page.items.to_pylist()] == [item["order_item_id"] for item in truth["items"]]

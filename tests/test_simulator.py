"""The MWS simulator over real HTTP: signatures, an independent client, paging, throttling, windows, data."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import quote, urlsplit

import pytest
import requests
from lxml import etree

from orders_pipeline.simulator import DEMO_CREDENTIALS, Faults, MwsSimulator, SimulatorConfig

NS = {"m": "https://mws.amazonservices.com/Orders/2013-09-01"}
NOW = datetime(2024, 3, 10, 12, 0, tzinfo=timezone.utc)
DAY = datetime(2024, 3, 3, tzinfo=timezone.utc)
MARKETS = ("ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1F83G8C2ARO7P")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _call(base_url: str, action: str, params: dict[str, str] | None = None, *, secret: str | None = None,
          method: str = "POST", overrides: dict[str, str] | None = None) -> requests.Response:
    """Sign (our own tiny SigV2 signer, not the product's) and send one request."""
    creds = DEMO_CREDENTIALS
    all_params = {
        "AWSAccessKeyId": creds.access_key_id,
        "Action": action,
        "SellerId": creds.seller_id,
        "SignatureMethod": "HmacSHA256",
        "SignatureVersion": "2",
        "Timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "Version": "2013-09-01",
        **(params or {}),
        **(overrides or {}),
    }
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(all_params.items()))
    host = urlsplit(base_url).netloc
    to_sign = f"{method}\n{host}\n/Orders/2013-09-01\n{query}"
    digest = hmac.new((secret or creds.secret_key).encode(), to_sign.encode(), hashlib.sha256).digest()
    body = f"{query}&Signature={quote(base64.b64encode(digest).decode(), safe='')}"
    url = f"{base_url}/Orders/2013-09-01"
    if method == "GET":
        return requests.get(f"{url}?{body}", timeout=10)
    return requests.post(url, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=10)


def _xml(response: requests.Response) -> etree._Element:
    return etree.fromstring(response.content)


def _text(root: etree._Element, path: str) -> str | None:
    found = root.find(path, NS)
    return None if found is None else found.text


def _window(after: datetime, before: datetime, **extra: str) -> dict[str, str]:
    params = {"LastUpdatedAfter": _iso(after), "LastUpdatedBefore": _iso(before)}
    params.update({f"MarketplaceId.Id.{i}": m for i, m in enumerate(MARKETS, 1)})
    params.update(extra)
    return params


def _all_orders(base_url: str, params: dict[str, str]) -> tuple[list[etree._Element], list[str]]:
    """Every Order of a listing and the NextTokens followed."""
    root = _xml(_call(base_url, "ListOrders", params))
    orders, tokens = list(root.iterfind(".//m:Order", NS)), []
    while (token := _text(root, ".//m:NextToken")) is not None:
        tokens.append(token)
        response = _call(base_url, "ListOrdersByNextToken", {"NextToken": token})
        assert response.status_code == 200, response.text
        root = _xml(response)
        orders += list(root.iterfind(".//m:Order", NS))
    return orders, tokens


@pytest.fixture(scope="module")
def sim():
    with MwsSimulator(SimulatorConfig(clock=lambda: NOW, throttling=False)) as simulator:
        yield simulator


def test_signature_checked_with_the_secret(sim):
    good = _call(sim.url, "GetServiceStatus")
    assert good.status_code == 200
    assert _text(_xml(good), ".//m:Status") == "GREEN"
    bad = _call(sim.url, "GetServiceStatus", secret="not-the-secret")
    assert bad.status_code == 403
    assert _text(_xml(bad), ".//m:Code") == "SignatureDoesNotMatch"
    assert bad.headers["Content-Type"] == "text/xml"
    assert _text(_xml(bad), "m:RequestId") == bad.headers["x-mws-request-id"]


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"AWSAccessKeyId": "AKIUNKNOWN"}, 403, "InvalidAccessKeyId"),
        ({"SellerId": "A1SOMEONEELSE"}, 401, "AccessDenied"),
        ({"MWSAuthToken": "amzn.mws.unexpected"}, 401, "AccessDenied"),
        ({"Timestamp": "2020-01-01T00:00:00Z"}, 400, "InvalidParameterValue"),
        ({"Version": "2011-01-01"}, 400, "InvalidParameterValue"),
    ],
)
def test_authentication_errors(sim, overrides, status, code):
    response = _call(sim.url, "GetServiceStatus", overrides=overrides)
    assert (response.status_code, _text(_xml(response), ".//m:Code")) == (status, code)


def test_get_requests_and_unknown_paths_and_actions(sim):
    assert _call(sim.url, "GetServiceStatus", method="GET").status_code == 200
    assert requests.get(f"{sim.url}/Products/2011-10-01", timeout=5).status_code == 404
    unknown = _call(sim.url, "DeleteAllOrders")
    assert (unknown.status_code, _text(_xml(unknown), ".//m:Code")) == (400, "InvalidParameterValue")


def test_python_amazon_mws_client_is_accepted(sim, monkeypatch):
    """python-amazon-mws signs 'domain minus https://' and the real Host header; only the scheme is swapped."""
    import mws
    import mws.mws as mws_module

    real_request = mws_module.request
    monkeypatch.setattr(
        mws_module, "request", lambda method, url, **kw: real_request(method, url.replace("https://", "http://", 1), **kw)
    )
    client = mws.Orders(
        DEMO_CREDENTIALS.access_key_id,
        DEMO_CREDENTIALS.secret_key,
        DEMO_CREDENTIALS.seller_id,
        domain=sim.url.replace("http://", "https://"),
    )
    listed = client.list_orders(
        marketplaceids=list(MARKETS),
        lastupdatedafter=DAY.replace(tzinfo=None),
        lastupdatedbefore=(DAY + timedelta(days=1)).replace(tzinfo=None),
        max_results="10",
    )
    expected = sim.expected_orders(DAY, DAY + timedelta(days=1))
    orders = listed.parsed["Orders"]["Order"]
    ids = [o["AmazonOrderId"] for o in orders]
    assert ids == [o["amazon_order_id"] for o in expected[:10]]
    next_page = client.list_orders(next_token=listed.parsed["NextToken"])
    assert next_page.parsed["Orders"]["Order"][0]["AmazonOrderId"] == expected[10]["amazon_order_id"]

    with_items = next(o for o in expected if len(o["items"]) > 2)
    items = client.list_order_items(amazon_order_id=with_items["amazon_order_id"])
    first_page = list(items.parsed["OrderItems"]["OrderItem"])
    more = list(client.list_order_items(next_token=items.parsed["NextToken"]).parsed["OrderItems"]["OrderItem"])
    got_skus = [i["SellerSKU"] for i in first_page + more]
    assert got_skus == [i["seller_sku"] for i in with_items["items"]]


def test_paging_tokens_are_opaque_reusable_and_family_bound(sim):
    params = _window(DAY, DAY + timedelta(days=1), MaxResultsPerPage="7")
    orders, tokens = _all_orders(sim.url, params)
    expected = sim.expected_orders(DAY, DAY + timedelta(days=1))
    assert [_text(o, "m:AmazonOrderId") for o in orders] == [o["amazon_order_id"] for o in expected]
    assert len(tokens) == (len(expected) - 1) // 7
    assert all(set("+/=") <= set(token) for token in tokens)
    first = _call(sim.url, "ListOrdersByNextToken", {"NextToken": tokens[0]})
    again = _call(sim.url, "ListOrdersByNextToken", {"NextToken": tokens[0]})
    assert first.content.split(b"<ResponseMetadata>")[0] == again.content.split(b"<ResponseMetadata>")[0]
    wrong_family = _call(sim.url, "ListOrderItemsByNextToken", {"NextToken": tokens[0]})
    assert (wrong_family.status_code, _text(_xml(wrong_family), ".//m:Code")) == (400, "NextTokenCorrupted")
    lastupdates = [_text(o, "m:LastUpdateDate") for o in orders]
    assert lastupdates == sorted(lastupdates)


def test_list_order_items_pages_and_matches_ground_truth(sim):
    expected = sim.expected_orders(DAY, DAY + timedelta(days=1))
    order = next(o for o in expected if len(o["items"]) >= 3)
    root = _xml(_call(sim.url, "ListOrderItems", {"AmazonOrderId": order["amazon_order_id"]}))
    assert len(root.findall(".//m:OrderItem", NS)) == 2
    token = _text(root, ".//m:NextToken")
    rest = _xml(_call(sim.url, "ListOrderItemsByNextToken", {"NextToken": token}))
    items = root.findall(".//m:OrderItem", NS) + rest.findall(".//m:OrderItem", NS)
    assert [_text(i, "m:OrderItemId") for i in items] == [i["order_item_id"] for i in order["items"]]
    assert [Decimal(_text(i, "m:ItemPrice/m:Amount")) for i in items] == [i["item_price_amount"] for i in order["items"]]
    assert _text(rest, ".//m:AmazonOrderId") == order["amazon_order_id"]


def test_pending_orders_have_no_prices(sim):
    start = NOW - timedelta(hours=10)
    pending = [o for o in sim.expected_orders(start, NOW - timedelta(minutes=3)) if o["order_status"] == "Pending"]
    assert pending, "a window ending shortly before now should hold Pending orders"
    order = pending[0]
    assert order["order_total_amount"] is None
    root = _xml(_call(sim.url, "GetOrder", {"AmazonOrderId.Id.1": order["amazon_order_id"]}))
    assert _text(root, ".//m:OrderStatus") == "Pending"
    assert root.find(".//m:OrderTotal", NS) is None and root.find(".//m:ShippingAddress", NS) is None
    items = _xml(_call(sim.url, "ListOrderItems", {"AmazonOrderId": order["amazon_order_id"]}))
    assert items.find(".//m:ItemPrice", NS) is None and items.find(".//m:ItemTax", NS) is None
    assert items.find(".//m:SellerSKU", NS) is not None


def test_two_minute_rule_and_window_validation(sim):
    too_late = _call(sim.url, "ListOrders", _window(NOW - timedelta(hours=1), NOW - timedelta(seconds=60)))
    assert (too_late.status_code, _text(_xml(too_late), ".//m:Code")) == (400, "InvalidParameterValue")
    no_before = _window(NOW - timedelta(hours=1), NOW)
    del no_before["LastUpdatedBefore"]
    root = _xml(_call(sim.url, "ListOrders", no_before))
    assert _text(root, ".//m:LastUpdatedBefore") == "2024-03-10T11:58:00.000Z"
    after_is_late = _window(NOW - timedelta(seconds=30), NOW)
    del after_is_late["LastUpdatedBefore"]
    assert _call(sim.url, "ListOrders", after_is_late).status_code == 400
    reversed_window = _call(sim.url, "ListOrders", _window(DAY + timedelta(hours=2), DAY))
    assert "after the LastUpdatedBefore" in _text(_xml(reversed_window), ".//m:Message")
    for bad in (
        {"MarketplaceId.Id.4": "A1VC38T7YXB528"},
        {"OrderStatus.Status.1": "Unshipped"},
        {"MaxResultsPerPage": "101"},
        {"CreatedAfter": _iso(DAY)},
    ):
        response = _call(sim.url, "ListOrders", _window(DAY, DAY + timedelta(hours=1), **bad))
        assert response.status_code == 400, bad


def test_status_and_channel_filters(sim):
    params = _window(DAY, DAY + timedelta(days=2), **{"FulfillmentChannel.Channel.1": "MFN", "OrderStatus.Status.1": "Shipped"})
    orders, _ = _all_orders(sim.url, params)
    assert orders
    assert {(_text(o, "m:FulfillmentChannel"), _text(o, "m:OrderStatus")) for o in orders} == {("MFN", "Shipped")}


def test_truncated_window_echoes_shorter_bound():
    with MwsSimulator(SimulatorConfig(clock=lambda: NOW, throttling=False, faults=Faults(truncate_window_hours=6))) as sim:
        root = _xml(_call(sim.url, "ListOrders", _window(DAY, DAY + timedelta(days=1))))
        assert _text(root, ".//m:LastUpdatedBefore") == "2024-03-03T06:00:00.000Z"
        got = [_text(o, "m:AmazonOrderId") for o in root.iterfind(".//m:Order", NS)]
        assert got == [o["amazon_order_id"] for o in sim.expected_orders(DAY, DAY + timedelta(hours=6))]


def test_throttling_and_quota_headers():
    with MwsSimulator(SimulatorConfig(clock=lambda: NOW, time_scale=30)) as sim:
        answers = [_call(sim.url, "ListOrders", _window(DAY, DAY + timedelta(hours=1))) for _ in range(7)]
        assert [r.status_code for r in answers] == [200] * 6 + [503]
        throttled = _xml(answers[-1])
        assert _text(throttled, ".//m:Code") == "RequestThrottled"
        assert _text(throttled, "m:RequestID") == answers[-1].headers["x-mws-request-id"]
        assert sim.stats.throttled == 1
        for response in answers:
            headers = response.headers
            assert headers["x-mws-quota-max"] == "6.0"
            resets = datetime.fromisoformat(headers["x-mws-quota-resetsOn"])
            stamp = datetime.fromisoformat(headers["x-mws-timestamp"])
            missing = 6 - float(headers["x-mws-quota-remaining"])
            # restore rate is 1 per 60 s x 30 = 0.5 tokens/s; time-to-full covers the missing tokens
            assert missing / 0.5 - 2 <= (resets - stamp).total_seconds() <= missing / 0.5 + 0.01
        assert answers[5].headers["x-mws-quota-remaining"] == "0.0"
        items = _call(sim.url, "GetServiceStatus")
        assert items.headers["x-mws-quota-max"] == "2.0"


def test_faults_in_request_order():
    faults = Faults(
        fail_request_numbers=frozenset({2}),
        reset_request_numbers=frozenset({3}),
        slow_request_numbers=frozenset({6}),
        slow_seconds=0.5,
        server_error_every=5,
    )
    with MwsSimulator(SimulatorConfig(clock=lambda: NOW, throttling=False, faults=faults)) as sim:
        assert _call(sim.url, "GetServiceStatus").status_code == 200
        assert _call(sim.url, "GetServiceStatus").status_code == 503
        with pytest.raises(requests.ConnectionError):
            _call(sim.url, "GetServiceStatus")
        assert _call(sim.url, "GetServiceStatus").status_code == 200
        fifth = _call(sim.url, "GetServiceStatus")
        assert (fifth.status_code, _text(_xml(fifth), ".//m:Code")) == (500, "InternalError")
        with pytest.raises(requests.ReadTimeout):
            requests.get(f"{sim.url}/Orders/2013-09-01?Action=GetServiceStatus", timeout=0.2)
        assert [_call(sim.url, "GetServiceStatus").status_code for _ in range(3)] == [200, 200, 200]
        tenth = _call(sim.url, "GetServiceStatus")
        assert (tenth.status_code, _text(_xml(tenth), ".//m:Code")) == (503, "ServiceUnavailable")
        assert sim.stats.faults_injected == 5
        assert sim.stats.requests_by_action["GetServiceStatus"] == 10


def test_external_throttle_hits_even_a_patient_client():
    config = SimulatorConfig(clock=lambda: NOW, time_scale=10_000, faults=Faults(external_throttle=True))
    with MwsSimulator(config) as sim:
        codes = [_call(sim.url, "ListOrderItems", {"AmazonOrderId": "000-0000000-0000000"}).status_code for _ in range(250)]
        assert 503 in codes and codes.count(503) < 25
        assert set(codes) == {400, 503}  # the unknown order id is a 400 whenever quota allowed the call


def test_duplicates_carry_an_older_version_on_an_earlier_page():
    faults = Faults(duplicate_across_pages=True)
    config = SimulatorConfig(clock=lambda: NOW, throttling=False, orders_per_day=400, faults=faults)
    with MwsSimulator(config) as sim:
        orders, _ = _all_orders(sim.url, _window(DAY, DAY + timedelta(days=1), MaxResultsPerPage="50"))
        seen: dict[str, str] = {}
        repeated = 0
        for order in orders:
            order_id, updated = _text(order, "m:AmazonOrderId"), _text(order, "m:LastUpdateDate")
            if order_id in seen:
                repeated += 1
                assert seen[order_id] < updated
            seen[order_id] = updated
        assert repeated > 0
        assert len(seen) == len(sim.expected_orders(DAY, DAY + timedelta(days=1)))


def test_messy_values_leave_ids_and_update_dates_intact():
    config = SimulatorConfig(clock=lambda: NOW, throttling=False, orders_per_day=400, faults=Faults(messy_values=True))
    with MwsSimulator(config) as sim:
        orders, _ = _all_orders(sim.url, _window(DAY, DAY + timedelta(days=3)))
        purchase_dates = [_text(o, "m:PurchaseDate") for o in orders]
        categories = [_text(o, "m:ShipmentServiceLevelCategory") for o in orders]
        assert any("%3A" in p for p in purchase_dates) and any(len(p.split("-")[0]) == 5 for p in purchase_dates)
        assert any(c != c.strip() for c in categories)
        truth = {o["amazon_order_id"]: o["last_update_date"] for o in sim.expected_orders(DAY, DAY + timedelta(days=3))}
        assert {_text(o, "m:AmazonOrderId"): datetime.fromisoformat(_text(o, "m:LastUpdateDate")) for o in orders} == truth


def test_get_order_limits_and_unknown_ids(sim):
    order = sim.expected_orders(DAY, DAY + timedelta(days=1))[0]
    ids = {"AmazonOrderId.Id.1": order["amazon_order_id"], "AmazonOrderId.Id.2": "111-1111111-1111111"}
    root = _xml(_call(sim.url, "GetOrder", ids))
    assert [_text(o, "m:AmazonOrderId") for o in root.iterfind(".//m:Order", NS)] == [order["amazon_order_id"]]
    too_many = {f"AmazonOrderId.Id.{i}": order["amazon_order_id"] for i in range(1, 52)}
    assert _call(sim.url, "GetOrder", too_many).status_code == 400


def test_same_seed_same_orders_and_other_seed_differs():
    window = (DAY, DAY + timedelta(days=1))
    first = MwsSimulator(SimulatorConfig(clock=lambda: NOW)).expected_orders(*window)
    second = MwsSimulator(SimulatorConfig(clock=lambda: NOW)).expected_orders(*window)
    other = MwsSimulator(SimulatorConfig(clock=lambda: NOW, seed=8)).expected_orders(*window)
    assert first == second
    assert [o["amazon_order_id"] for o in first] != [o["amazon_order_id"] for o in other]


def test_data_is_realistic_over_a_month():
    sim = MwsSimulator(SimulatorConfig(clock=lambda: NOW))
    orders = sim.expected_orders(NOW - timedelta(days=40), NOW - timedelta(minutes=2))
    statuses = {o["order_status"] for o in orders}
    assert {"Pending", "Unshipped", "Shipped", "Canceled"} <= statuses
    assert {o["sales_channel"] for o in orders} == {"Amazon.com", "Amazon.ca", "Amazon.co.uk", "Non-Amazon"}
    assert {o["currency"] for o in orders} == {"USD", "CAD", "GBP"}
    assert {o["fulfillment_channel"] for o in orders} == {"AFN", "MFN"}
    skus = [i["seller_sku"] for o in orders for i in o["items"]]
    assert len(set(skus)) >= 100
    stuck = [o for o in orders if o["order_status"] == "Pending" and o["last_update_date"] < NOW - timedelta(days=2)]
    assert stuck, "some orders stay Pending for days"
    for order in orders:
        if order["order_status"] != "Pending" and order["order_total_amount"] is not None:
            assert order["order_total_amount"] > 0
        assert order["last_update_date"] >= order["purchase_date"]


def test_best_and_worst_sellers_and_shifting_demand():
    sim = MwsSimulator(SimulatorConfig(clock=lambda: NOW, orders_per_day=300))
    early = sim.expected_orders(datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2024, 1, 11, tzinfo=timezone.utc))
    late = sim.expected_orders(datetime(2024, 3, 1, tzinfo=timezone.utc), datetime(2024, 3, 11, tzinfo=timezone.utc))

    def units(orders: list[dict]) -> dict[str, int]:
        sold: dict[str, int] = {}
        for order in orders:
            for item in order["items"]:
                sold[item["seller_sku"]] = sold.get(item["seller_sku"], 0) + item["quantity_ordered"]
        return sold

    before, after = units(early), units(late)
    ranked = sorted(before.values(), reverse=True)
    assert ranked[0] > 20 * ranked[-1]
    movers = [sku for sku in set(before) | set(after) if after.get(sku, 0) > 3 * before.get(sku, 0) + 20
              or before.get(sku, 0) > 3 * after.get(sku, 0) + 20]
    assert movers, "some SKUs' demand shifts over time"

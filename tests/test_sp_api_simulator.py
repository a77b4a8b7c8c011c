"""The simulator's SP-API face over real HTTP with `requests`: LWA, searchOrders, getOrder, faults, hostile input."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from orders_pipeline.simulator import DEMO_SP_API_CREDENTIALS, Faults, MwsSimulator, SimulatorConfig

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=timezone.utc)
DAY = datetime(2024, 3, 3, tzinfo=timezone.utc)
MARKETS = "ATVPDKIKX0DER,A2EUQ1WTGCTBG2,A1F83G8C2ARO7P"
SEARCH = "/orders/2026-01-01/orders"
STATUS = {"Pending": "PENDING", "Unshipped": "UNSHIPPED", "PartiallyShipped": "PARTIALLY_SHIPPED",
          "Shipped": "SHIPPED", "Canceled": "CANCELLED"}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _simulator(**config: object) -> MwsSimulator:
    faults = config.pop("faults", Faults())
    settings = {"time_scale": 600.0, "clock": lambda: NOW, "faults": faults, **config}
    return MwsSimulator(SimulatorConfig(**settings))  # type: ignore[arg-type]


@pytest.fixture
def sim() -> Iterator[MwsSimulator]:
    """A simulator with a fixed clock and a fast quota clock."""
    with _simulator() as running:
        yield running


def token_for(base_url: str, **overrides: str) -> requests.Response:
    """POST the demo app's refresh-token grant to the LWA endpoint."""
    creds = DEMO_SP_API_CREDENTIALS
    form = {"grant_type": "refresh_token", "refresh_token": creds.refresh_token,
            "client_id": creds.app_id, "client_secret": creds.client_secret, **overrides}
    return requests.post(f"{base_url}/auth/o2/token", data=form, timeout=10)


def access_token(base_url: str) -> str:
    response = token_for(base_url)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def get(base_url: str, path: str, token: str, **params: str) -> requests.Response:
    return requests.get(f"{base_url}{path}", params=params, headers={"x-amz-access-token": token}, timeout=10)


def day_query(**extra: str) -> dict[str, str]:
    return {"lastUpdatedAfter": _iso(DAY), "lastUpdatedBefore": _iso(DAY + timedelta(days=1)),
            "marketplaceIds": MARKETS, **extra}


def search_all(base_url: str, token: str, query: dict[str, str], page_size: int) -> tuple[list[dict], list[dict]]:
    """Every order of a search (following nextToken, repeating the query) and every page body."""
    pages = [get(base_url, SEARCH, token, **query, maxResultsPerPage=str(page_size)).json()]
    while "pagination" in pages[-1]:
        token_value = pages[-1]["pagination"]["nextToken"]
        response = get(base_url, SEARCH, token, **query, maxResultsPerPage=str(page_size), paginationToken=token_value)
        assert response.status_code == 200, response.text
        pages.append(response.json())
    return [order for page in pages for order in page["orders"]], pages


def error_of(response: requests.Response) -> tuple[int, str]:
    errors = response.json()["errors"]
    assert len(errors) == 1 and errors[0]["message"]
    assert response.headers["x-amzn-RequestId"]
    return response.status_code, errors[0]["code"]


def test_lwa_issues_bearer_tokens_and_refuses_wrong_credentials(sim):
    response = token_for(sim.url)
    body = response.json()
    assert response.status_code == 200
    assert body["access_token"].startswith("Atza|") and body["token_type"] == "bearer"
    assert body["expires_in"] == 3600 and body["refresh_token"] == DEMO_SP_API_CREDENTIALS.refresh_token
    assert access_token(sim.url) != body["access_token"]
    wrong_secret = token_for(sim.url, client_secret="nope")
    assert (wrong_secret.status_code, wrong_secret.json()["error"]) == (401, "invalid_client")
    wrong_grant = token_for(sim.url, refresh_token="Atzr|revoked")
    assert (wrong_grant.status_code, wrong_grant.json()["error"]) == (400, "invalid_grant")
    assert token_for(sim.url, grant_type="client_credentials").json()["error"] == "unsupported_grant_type"
    assert error_of(get(sim.url, SEARCH, "Atza|forged", **day_query())) == (403, "Unauthorized")
    assert error_of(requests.get(f"{sim.url}{SEARCH}", params=day_query(), timeout=10)) == (403, "Unauthorized")


def test_search_orders_pages_follow_next_token_and_match_the_truth(sim):
    token = access_token(sim.url)
    orders, pages = search_all(sim.url, token, day_query(includedData="FULFILLMENT,PROCEEDS"), page_size=7)
    truth = {o["amazon_order_id"]: o for o in sim.expected_orders(DAY, DAY + timedelta(days=1))}
    assert len(pages) >= 3 and all(len(page["orders"]) == 7 for page in pages[:-1])
    assert all(page["lastUpdatedBefore"] == "2024-03-04T00:00:00.000Z" for page in pages)
    assert [o["orderId"] for o in orders] == list(truth)
    for order in orders:
        expected = truth[order["orderId"]]
        assert order["lastUpdatedTime"] == _iso(expected["last_update_date"])
        assert order["createdTime"] == _iso(expected["purchase_date"])
        assert order["fulfillment"]["fulfillmentStatus"] == STATUS[expected["order_status"]]
        assert order["fulfillment"]["fulfilledBy"] == {"AFN": "AMAZON", "MFN": "MERCHANT"}[expected["fulfillment_channel"]]
        assert order["salesChannel"]["marketplaceId"] == expected["marketplace_id"]
        channel = order["salesChannel"]
        assert (channel["channelName"] == "NON_AMAZON") == (expected["sales_channel"] == "Non-Amazon")
        total = order.get("proceeds", {}).get("grandTotal")
        assert (Decimal(total["amount"]) if total else None) == expected["order_total_amount"]
        items = {item["orderItemId"]: item for item in order["orderItems"]}
        assert sorted(items) == sorted(i["order_item_id"] for i in expected["items"])
        for item in expected["items"]:
            shown = items[item["order_item_id"]]
            assert shown["product"]["sellerSku"] == item["seller_sku"] and shown["quantityOrdered"] == item["quantity_ordered"]
            assert shown["fulfillment"]["quantityFulfilled"] == item["quantity_shipped"]
            line = {b["type"]: Decimal(b["subtotal"]["amount"]) for b in shown.get("proceeds", {}).get("breakdowns", [])}
            assert line.get("ITEM") == item["item_price_amount"]


def test_a_next_page_must_repeat_the_query(sim):
    token = access_token(sim.url)
    first = get(sim.url, SEARCH, token, **day_query(), maxResultsPerPage="5").json()
    next_token = first["pagination"]["nextToken"]
    assert any(c in next_token for c in "+/="), "tokens must be percent-encoded by clients"
    alone = get(sim.url, SEARCH, token, paginationToken=next_token)
    assert error_of(alone) == (400, "InvalidInput")
    changed = get(sim.url, SEARCH, token, **day_query(marketplaceIds="ATVPDKIKX0DER"), paginationToken=next_token)
    assert error_of(changed) == (400, "InvalidInput")
    unknown = get(sim.url, SEARCH, token, **day_query(), paginationToken="bm90LWEtdG9rZW4=")
    assert error_of(unknown) == (400, "InvalidInput")
    again = [get(sim.url, SEARCH, token, **day_query(), maxResultsPerPage="9", includedData="FULFILLMENT",
                 paginationToken=next_token).json() for _ in range(2)]
    assert again[0]["orders"] == again[1]["orders"] and len(again[0]["orders"]) == 9, "a page can be fetched again"
    assert again[0]["orders"][0]["orderId"] != first["orders"][0]["orderId"]


def test_truncated_window_echoes_an_earlier_bound():
    with _simulator(faults=Faults(truncate_window_hours=6)) as sim:
        token = access_token(sim.url)
        orders, pages = search_all(sim.url, token, day_query(), page_size=100)
    bound = DAY + timedelta(hours=6)
    assert {page["lastUpdatedBefore"] for page in pages} == {"2024-03-03T06:00:00.000Z"}
    assert orders and all(order["lastUpdatedTime"] < _iso(bound) for order in orders)
    truth = sim.expected_orders(DAY, bound)
    assert [o["orderId"] for o in orders] == [o["amazon_order_id"] for o in truth]


def test_without_included_data_orders_carry_no_status_amounts_or_personal_data(sim):
    token = access_token(sim.url)
    basic = get(sim.url, SEARCH, token, **day_query()).json()["orders"]
    assert basic and all({"fulfillment", "proceeds", "buyer", "recipient"}.isdisjoint(order) for order in basic)
    assert all({"fulfillment", "proceeds"}.isdisjoint(item) and "price" not in item["product"]
               for order in basic for item in order["orderItems"])
    full = get(sim.url, SEARCH, token, **day_query(includedData="FULFILLMENT,PROCEEDS")).json()["orders"]
    assert all("fulfillment" in order and "buyer" not in order and "recipient" not in order for order in full)
    assert any("proceeds" in order for order in full)
    personal = get(sim.url, SEARCH, token, **day_query(includedData="BUYER,RECIPIENT")).json()["orders"]
    priced = [order for order in personal if "buyer" in order]
    assert priced and all(order["recipient"]["deliveryAddress"]["postalCode"] for order in priced)
    assert all("fulfillment" not in order for order in personal)


def test_get_order_answers_the_current_version(sim):
    token = access_token(sim.url)
    truth = sim.expected_orders(DAY, DAY + timedelta(days=1))[0]
    response = get(sim.url, f"{SEARCH}/{truth['amazon_order_id']}", token, includedData="FULFILLMENT")
    assert response.status_code == 200 and response.headers["x-amzn-RateLimit-Limit"] == "0.5"
    order = response.json()["order"]
    assert order["orderId"] == truth["amazon_order_id"]
    assert order["fulfillment"]["fulfillmentStatus"] == STATUS[truth["order_status"]]
    assert error_of(get(sim.url, f"{SEARCH}/111-1111111-1111111", token)) == (404, "NotFound")
    assert error_of(get(sim.url, f"{SEARCH}/not-an-order", token)) == (400, "InvalidInput")


def test_search_orders_throttles_past_the_burst_with_quota_exceeded():
    with _simulator(time_scale=1.0) as sim:
        token = access_token(sim.url)
        answers = [get(sim.url, SEARCH, token, **day_query(), maxResultsPerPage="1") for _ in range(21)]
        stats = sim.stats
    assert [a.status_code for a in answers] == [200] * 20 + [429]
    assert all(a.headers["x-amzn-RateLimit-Limit"] == "0.0056" for a in answers[:20])
    assert error_of(answers[20]) == (429, "QuotaExceeded") and "x-amzn-RateLimit-Limit" not in answers[20].headers
    assert stats.throttled == 1 and stats.requests_by_action["searchOrders"] == 21


def test_an_expired_token_is_refused_until_a_new_one_is_fetched():
    with _simulator(faults=Faults(expire_token_request_numbers=frozenset({3}))) as sim:
        token = access_token(sim.url)  # request 1
        assert get(sim.url, SEARCH, token, **day_query()).status_code == 200  # 2
        expired = get(sim.url, SEARCH, token, **day_query())  # 3
        assert error_of(expired) == (403, "Unauthorized")
        assert expired.json()["errors"][0]["message"] == "The access token you provided has expired."
        assert get(sim.url, SEARCH, token, **day_query()).status_code == 403
        assert get(sim.url, SEARCH, access_token(sim.url), **day_query()).status_code == 200


def test_tokens_expire_after_their_lifetime_under_the_time_scale():
    with _simulator(time_scale=1.0, sp_api_token_seconds=0.2) as sim:
        token = access_token(sim.url)
        assert get(sim.url, SEARCH, token, **day_query()).status_code == 200
        deadline = datetime.now(timezone.utc) + timedelta(seconds=0.3)
        while datetime.now(timezone.utc) < deadline:
            pass
        expired = get(sim.url, SEARCH, token, **day_query())
    assert error_of(expired) == (403, "Unauthorized") and "expired" in expired.json()["errors"][0]["message"]


def test_duplicates_across_pages_repeat_an_older_version_first():
    with _simulator(faults=Faults(duplicate_across_pages=True), orders_per_day=200) as sim:
        orders, _ = search_all(sim.url, access_token(sim.url), day_query(), page_size=20)
    seen: dict[str, list[str]] = {}
    for order in orders:
        seen.setdefault(order["orderId"], []).append(order["lastUpdatedTime"])
    repeated = {order_id: times for order_id, times in seen.items() if len(times) > 1}
    assert repeated and all(times[0] < times[-1] for times in repeated.values())


def test_messy_values_spoil_a_few_orders():
    with _simulator(faults=Faults(messy_values=True), orders_per_day=200) as sim:
        orders, _ = search_all(sim.url, access_token(sim.url), day_query(includedData="FULFILLMENT"), page_size=100)
    created = [order["createdTime"] for order in orders]
    levels = [order["fulfillment"]["fulfillmentServiceLevel"] for order in orders]
    assert any(len(value.split("-")[0]) == 5 for value in created)  # a bad year such as 20244
    assert any("%3A" in value for value in created)
    assert any(level.endswith(" ") for level in levels) and any("\n" in level for level in levels)


def test_server_errors_come_as_json_error_lists():
    faults = Faults(fail_request_numbers=frozenset({2}), internal_error_request_numbers=frozenset({3}))
    with _simulator(faults=faults) as sim:
        token = access_token(sim.url)
        assert error_of(get(sim.url, SEARCH, token, **day_query())) == (503, "ServiceUnavailable")
        assert error_of(get(sim.url, SEARCH, token, **day_query())) == (500, "InternalFailure")
        assert get(sim.url, SEARCH, token, **day_query()).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"maxResultsPerPage": "0"},
        {"maxResultsPerPage": "1e9"},
        {"includedData": "EVERYTHING"},
        {"lastUpdatedAfter": "yesterday"},
        {"lastUpdatedBefore": _iso(NOW - timedelta(minutes=1))},
        {"lastUpdatedBefore": _iso(DAY - timedelta(days=1))},
        {"marketplaceIds": ""},
        {"marketplaceIds": ",".join(["ATVPDKIKX0DER"] * 51)},
        {"marketplaceIds": "A1PA6795UKMFR9"},
        {"createdAfter": _iso(DAY)},
        {"lastUpdatedAfter": ""},
        {"fulfillmentStatuses": "Shipped"},
        {"fulfilledBy": "AFN"},
    ],
)
def test_hostile_or_invalid_queries_get_400_invalid_input(sim, params):
    response = get(sim.url, SEARCH, access_token(sim.url), **day_query(**params))
    assert error_of(response) == (400, "InvalidInput")
    assert response.headers["x-amzn-RateLimit-Limit"] == "0.0056"


def test_an_oversized_body_is_refused_without_being_read(sim):
    token = access_token(sim.url)
    response = requests.get(f"{sim.url}{SEARCH}", params=day_query(), data=b"x" * 200_000,
                            headers={"x-amz-access-token": token}, timeout=10)
    assert error_of(response) == (413, "RequestEntityTooLarge")
    unknown = get(sim.url, "/orders/2026-01-01/nothing", token)
    assert error_of(unknown) == (404, "NotFound")


def test_the_simulator_command_prints_both_faces_and_serves_them():
    script = Path(sys.executable).with_name("orders-pipeline")
    process = subprocess.Popen([str(script), "simulator", "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines: list[str] = []
        while not lines or not lines[-1].startswith("Press Ctrl-C"):
            lines.append(process.stdout.readline().strip())
        exports = dict(line.removeprefix("export ").split("=", 1) for line in lines if line.startswith("export "))
        assert exports["MWS_ENDPOINT"] == exports["SP_API_ENDPOINT"] and exports["ORDERS_SOURCE"] == "sp-api"
        assert exports["LWA_TOKEN_URL"] == f"{exports['SP_API_ENDPOINT']}/auth/o2/token"
        assert exports["LWA_APP_ID"] == DEMO_SP_API_CREDENTIALS.app_id
        assert exports["SP_API_REFRESH_TOKEN"] == f"'{DEMO_SP_API_CREDENTIALS.refresh_token}'"
        assert access_token(exports["SP_API_ENDPOINT"]).startswith("Atza|")
    finally:
        process.terminate()
        process.wait(timeout=10)

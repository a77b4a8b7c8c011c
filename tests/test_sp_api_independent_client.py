"""The independent `python-amazon-sp-api` client drives the simulator's SP-API face over real HTTP.

It proves the face speaks Amazon's protocol without the pipeline's own client: its LWA token client posts the
refresh-token grant to the simulator, its Orders v2026-01-01 client pages searchOrders, and its Reports client
creates, polls and downloads a GZIP report.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sp_api.api import Reports
from sp_api.api.orders.orders_2026_01_01 import OrdersV20260101
from sp_api.auth import AccessTokenClient
from sp_api.auth import access_token_client as token_cache
from sp_api.base import Marketplaces

from orders_pipeline.simulator import DEMO_SP_API_CREDENTIALS, MwsSimulator
from orders_pipeline.simulator.sp_api.report_document import COLUMNS

from .test_sp_api_simulator import DAY, _simulator

MARKETS = ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1F83G8C2ARO7P"]


@pytest.fixture
def sim() -> Iterator[MwsSimulator]:
    """A fixed-clock simulator whose tokens outlive the test even though the package caches them for 3,200 s."""
    token_cache.cache.clear()  # the package caches access tokens per refresh token, across simulators
    with _simulator(sp_api_token_seconds=3600 * 600.0, report_processing_seconds=300.0) as running:
        yield running
    token_cache.cache.clear()


def clients_for(sim: MwsSimulator) -> tuple[OrdersV20260101, Reports]:
    """The package's own clients, pointed at the simulator's endpoint and its LWA token URL."""
    token_client = type("SimulatorTokenClient", (AccessTokenClient,),
                        {"scheme": "http://", "host": urlsplit(sim.url).netloc, "path": "/auth/o2/token"})
    credentials = {"refresh_token": DEMO_SP_API_CREDENTIALS.refresh_token,
                   "lwa_app_id": DEMO_SP_API_CREDENTIALS.app_id,
                   "lwa_client_secret": DEMO_SP_API_CREDENTIALS.client_secret}
    orders = OrdersV20260101(Marketplaces.US, credentials=credentials, auth_token_client_class=token_client)
    reports = Reports(Marketplaces.US, credentials=credentials, auth_token_client_class=token_client)
    for client in (orders, reports):
        client.endpoint = sim.url
    return orders, reports


def test_python_amazon_sp_api_pages_search_orders(sim):
    orders_client, _ = clients_for(sim)
    query = {"lastUpdatedAfter": "2024-03-03T00:00:00Z", "lastUpdatedBefore": "2024-03-04T00:00:00Z",
             "marketplaceIds": MARKETS, "includedData": ["FULFILLMENT", "PROCEEDS"], "maxResultsPerPage": 10}
    pages = [orders_client.search_orders(**query)]
    while pages[-1].next_token:
        pages.append(orders_client.search_orders(**query, paginationToken=pages[-1].next_token))
    truth = sim.expected_orders(DAY, DAY + timedelta(days=1))
    assert len(pages) >= 3 and pages[0].rate_limit == "0.0056"
    assert all(page.payload["lastUpdatedBefore"] == "2024-03-04T00:00:00.000Z" for page in pages)
    got = [(o["orderId"], o["fulfillment"]["fulfillmentStatus"]) for page in pages for o in page.payload["orders"]]
    status = {"Pending": "PENDING", "Unshipped": "UNSHIPPED", "PartiallyShipped": "PARTIALLY_SHIPPED",
              "Shipped": "SHIPPED", "Canceled": "CANCELLED"}
    assert got == [(o["amazon_order_id"], status[o["order_status"]]) for o in truth]
    one = orders_client.get_order(truth[0]["amazon_order_id"], includedData=["PROCEEDS"]).payload["order"]
    assert one["orderId"] == truth[0]["amazon_order_id"] and "fulfillment" not in one


def test_python_amazon_sp_api_report_round_trip(sim):
    _, reports_client = clients_for(sim)
    created = reports_client.create_report(
        reportType="GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL", marketplaceIds=MARKETS,
        dataStartTime=DAY, dataEndTime=DAY + timedelta(days=2),
    )
    report = reports_client.get_report(created.payload["reportId"]).payload
    while report["processingStatus"] in ("IN_QUEUE", "IN_PROGRESS"):
        time.sleep(0.05)
        report = reports_client.get_report(created.payload["reportId"]).payload
    assert report["processingStatus"] == "DONE"
    document = reports_client.get_report_document(report["reportDocumentId"], download=True)
    lines = document.payload["document"].splitlines()
    truth = sim.expected_orders(DAY, DAY + timedelta(days=2))
    assert document.character_code.lower() == "utf-8" and lines[0].split("\t") == list(COLUMNS)
    assert [line.split("\t")[0] for line in lines[1:]] == [o["amazon_order_id"] for o in truth for _ in o["items"]]

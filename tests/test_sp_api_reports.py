"""The simulator's Reports 2021-06-30 face over real HTTP: lifecycle, GZIP TSV document, faults, hostile bodies."""

from __future__ import annotations

import gzip
import json
import time
from datetime import timedelta
from decimal import Decimal

import pytest
import requests

from orders_pipeline.simulator import Faults
from orders_pipeline.simulator.sp_api.report_document import COLUMNS

from .test_sp_api_simulator import DAY, NOW, _iso, _simulator, access_token, error_of

REPORTS = "/reports/2021-06-30/reports"
REPORT_TYPE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
MARKETS = ["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1F83G8C2ARO7P"]


def create(base_url: str, token: str, **spec: object) -> requests.Response:
    body = {"reportType": REPORT_TYPE, "marketplaceIds": MARKETS, "dataStartTime": _iso(DAY),
            "dataEndTime": _iso(DAY + timedelta(days=3)), **spec}
    return requests.post(f"{base_url}{REPORTS}", data=json.dumps(body),
                         headers={"x-amz-access-token": token, "Content-Type": "application/json"}, timeout=10)


def get(base_url: str, path: str, token: str) -> requests.Response:
    return requests.get(f"{base_url}{path}", headers={"x-amz-access-token": token}, timeout=10)


def poll_until_final(base_url: str, token: str, report_id: str) -> list[dict]:
    """getReport answers until processing ends."""
    seen = [get(base_url, f"{REPORTS}/{report_id}", token).json()]
    while seen[-1]["processingStatus"] in ("IN_QUEUE", "IN_PROGRESS"):
        time.sleep(0.05)
        seen.append(get(base_url, f"{REPORTS}/{report_id}", token).json())
    return seen


def test_a_report_waits_in_queue_without_a_document():
    with _simulator(report_processing_seconds=3600 * 600) as sim:
        token = access_token(sim.url)
        created = create(sim.url, token)
        assert created.status_code == 202 and created.headers["x-amzn-RateLimit-Limit"] == "0.0167"
        report = get(sim.url, f"{REPORTS}/{created.json()['reportId']}", token)
    assert report.headers["x-amzn-RateLimit-Limit"] == "2"
    body = report.json()
    assert body["processingStatus"] == "IN_QUEUE" and "reportDocumentId" not in body
    assert (body["reportType"], body["marketplaceIds"]) == (REPORT_TYPE, MARKETS)
    assert (body["dataStartTime"], body["dataEndTime"]) == ("2024-03-03T00:00:00Z", "2024-03-06T00:00:00Z")


def test_report_round_trip_gives_the_truth_as_gzip_tsv():
    with _simulator(report_processing_seconds=600.0) as sim:
        token = access_token(sim.url)
        report_id = create(sim.url, token).json()["reportId"]
        seen = poll_until_final(sim.url, token, report_id)
        document = get(sim.url, f"/reports/2021-06-30/documents/{seen[-1]['reportDocumentId']}", token)
        link = document.json()
        download = requests.get(link["url"], timeout=10)  # pre-signed: no access token
        truth = sim.expected_orders(DAY, DAY + timedelta(days=3))
        base_url = sim.url
    order = ["IN_QUEUE", "IN_PROGRESS", "DONE"]
    statuses = [answer["processingStatus"] for answer in seen]
    assert statuses[-1] == "DONE" and statuses == sorted(statuses, key=order.index)
    assert "processingEndTime" in seen[-1] and document.headers["x-amzn-RateLimit-Limit"] == "0.0167"
    assert link["compressionAlgorithm"] == "GZIP" and link["url"].startswith(f"{base_url}/")
    lines = gzip.decompress(download.content).decode("utf-8").splitlines()
    rows = [dict(zip(COLUMNS, line.split("\t"))) for line in lines[1:]]
    assert tuple(lines[0].split("\t")) == COLUMNS and all(len(line.split("\t")) == len(COLUMNS) for line in lines)
    expected_rows = [(o["amazon_order_id"], i["seller_sku"], i["item_price_amount"]) for o in truth for i in o["items"]]
    assert len(expected_rows) > 100
    got_rows = [(r["amazon-order-id"], r["sku"], Decimal(r["item-price"]) if r["item-price"] else None) for r in rows]
    assert got_rows == expected_rows
    by_order = {o["amazon_order_id"]: o for o in truth}
    for row in rows:
        expected = by_order[row["amazon-order-id"]]
        status = {"Canceled": "Cancelled"}.get(expected["order_status"], expected["order_status"])
        assert row["order-status"] == status
        assert row["last-updated-date"] == expected["last_update_date"].strftime("%Y-%m-%dT%H:%M:%S+00:00")
        assert row["fulfillment-channel"] == {"AFN": "Amazon", "MFN": "Merchant"}[expected["fulfillment_channel"]]


@pytest.mark.parametrize("outcome", ["FATAL", "CANCELLED"])
def test_a_report_fault_ends_it_without_a_document(outcome):
    with _simulator(report_processing_seconds=0.0, faults=Faults(report_outcome=outcome)) as sim:
        token = access_token(sim.url)
        report = poll_until_final(sim.url, token, create(sim.url, token).json()["reportId"])[-1]
    assert report["processingStatus"] == outcome and "reportDocumentId" not in report


def test_unknown_reports_documents_and_expired_links():
    with _simulator(report_processing_seconds=0.0) as sim:
        token = access_token(sim.url)
        assert error_of(get(sim.url, f"{REPORTS}/123", token)) == (404, "NotFound")
        assert error_of(get(sim.url, "/reports/2021-06-30/documents/amzn1.spdoc.nothing", token)) == (404, "NotFound")
        report = poll_until_final(sim.url, token, create(sim.url, token).json()["reportId"])[-1]
        url = get(sim.url, f"/reports/2021-06-30/documents/{report['reportDocumentId']}", token).json()["url"]
        expired = requests.get(url.split("?")[0] + "?expires=1000", timeout=10)
        assert expired.status_code == 403 and b"AccessDenied" in expired.content


@pytest.mark.parametrize(
    "spec",
    [
        {"reportType": "GET_MERCHANT_LISTINGS_ALL_DATA"},
        {"dataEndTime": _iso(DAY + timedelta(days=31))},
        {"dataEndTime": _iso(NOW + timedelta(hours=1))},
        {"dataStartTime": _iso(DAY + timedelta(days=4))},
        {"dataStartTime": "last tuesday"},
        {"dataStartTime": 20240303},
        {"marketplaceIds": []},
        {"marketplaceIds": "ATVPDKIKX0DER"},
        {"marketplaceIds": ["A1PA6795UKMFR9"]},
        {"marketplaceIds": MARKETS * 9},
        {"reportOptions": {"a": {"b": {"c": {"d": 1}}}}},
    ],
)
def test_invalid_report_requests_get_400_invalid_input(spec):
    with _simulator() as sim:
        response = create(sim.url, access_token(sim.url), **spec)
    assert error_of(response) == (400, "InvalidInput")


def test_hostile_report_bodies_are_refused_with_clear_errors():
    with _simulator() as sim:
        token = access_token(sim.url)
        headers = {"x-amz-access-token": token, "Content-Type": "application/json"}
        url = f"{sim.url}{REPORTS}"
        deep = requests.post(url, data="[" * 30_000 + "]" * 30_000, headers=headers, timeout=10)
        nested = requests.post(url, data='{"a":' * 500 + "1" + "}" * 500, headers=headers, timeout=10)
        garbage = requests.post(url, data=b"\xff{not json", headers=headers, timeout=10)
        array = requests.post(url, data="[1, 2]", headers=headers, timeout=10)
        huge = requests.post(url, data=json.dumps({"reportType": "x" * 100_000}), headers=headers, timeout=10)
        form = requests.post(url, data={"reportType": REPORT_TYPE}, headers={"x-amz-access-token": token}, timeout=10)
        still_serving = create(sim.url, token)
    for response in (deep, nested, garbage, array):
        assert error_of(response) == (400, "InvalidInput")
    assert error_of(huge) == (413, "RequestEntityTooLarge")
    assert error_of(form) == (415, "UnsupportedMediaType")
    assert still_serving.status_code == 202

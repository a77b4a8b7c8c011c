"""Reports 2021-06-30: createReport validation, the IN_QUEUE -> IN_PROGRESS -> DONE lifecycle, and documents."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..config import SimulatorConfig
from ..errors import MwsError
from ..orders import OrderStore
from ..params import parse_timestamp
from ..xml_writer import iso_seconds
from .errors import invalid_input, not_found
from .report_document import report_gzip

REPORT_TYPE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
MAX_SPAN = timedelta(days=30)
MAX_MARKETPLACES = 25
MAX_JSON_DEPTH = 4
DOCUMENT_URL_SECONDS = 300  # a pre-signed link lives five minutes


@dataclass
class _Report:
    """A requested report: its window, the simulated time it was asked at, and its document once built."""

    report_id: str
    marketplace_ids: tuple[str, ...]
    start: datetime
    end: datetime
    created: datetime
    started_monotonic: float
    document_id: str
    document: bytes | None = None


class ReportDesk:
    """Takes report requests, answers their status as time passes and builds their GZIP TSV documents."""

    def __init__(self, config: SimulatorConfig, store: OrderStore) -> None:
        self._config = config
        self._store = store
        self._reports: dict[str, _Report] = {}
        self._by_document: dict[str, _Report] = {}
        self._numbers = itertools.count(50_000_000_001)
        self._lock = threading.Lock()

    def create(self, body: bytes, now: datetime) -> dict:
        """Validate a createReport body and queue the report; `{reportId}`."""
        spec = _json_object(body)
        if spec.get("reportType") != REPORT_TYPE:
            raise invalid_input(f"Unsupported reportType {str(spec.get('reportType'))[:80]!r}: use {REPORT_TYPE}.")
        marketplaces = self._marketplaces(spec.get("marketplaceIds"))
        end = _time(spec, "dataEndTime") if "dataEndTime" in spec else now
        start = _time(spec, "dataStartTime") if "dataStartTime" in spec else end - MAX_SPAN
        if end > now:
            raise invalid_input("dataEndTime cannot be in the future.")
        if start >= end:
            raise invalid_input("dataStartTime must be before dataEndTime.")
        if end - start > MAX_SPAN:
            raise invalid_input("The report spans more than 30 days: split it into reports of at most 30 days.")
        report = _Report(str(next(self._numbers)), marketplaces, start, end, now, time.monotonic(),
                         f"amzn1.spdoc.1.4.na.{uuid.uuid4()}")
        with self._lock:
            self._reports[report.report_id] = report
            self._by_document[report.document_id] = report
        return {"reportId": report.report_id}

    def describe(self, report_id: str) -> dict:
        """getReport: the report and where it is in its lifecycle."""
        with self._lock:
            report = self._reports.get(report_id)
        if report is None:
            raise not_found(f"Report {report_id[:40]} was not found.")
        status = self._status(report)
        seconds = self._config.report_processing_seconds
        body = {
            "reportId": report.report_id,
            "reportType": REPORT_TYPE,
            "marketplaceIds": list(report.marketplace_ids),
            "dataStartTime": iso_seconds(int(report.start.timestamp())),
            "dataEndTime": iso_seconds(int(report.end.timestamp())),
            "createdTime": iso_seconds(int(report.created.timestamp())),
            "processingStatus": status,
        }
        if status != "IN_QUEUE":
            body["processingStartTime"] = iso_seconds(int(report.created.timestamp() + seconds / 3))
        if status not in ("IN_QUEUE", "IN_PROGRESS"):
            body["processingEndTime"] = iso_seconds(int(report.created.timestamp() + seconds))
        if status == "DONE":
            body["reportDocumentId"] = report.document_id
        return body

    def document_link(self, document_id: str, base_url: str) -> dict:
        """getReportDocument: a pre-signed (token-free) link back to this server, valid five minutes."""
        self._done_report(document_id)
        expires = int(time.time()) + DOCUMENT_URL_SECONDS
        return {
            "reportDocumentId": document_id,
            "url": f"{base_url}/report-documents/{document_id}?expires={expires}",
            "compressionAlgorithm": "GZIP",
        }

    def document(self, document_id: str) -> bytes:
        """The gzip bytes of a DONE report: orders whose current version (when asked) was updated in the window."""
        report = self._done_report(document_id)
        if report.document is None:
            refs = self._store.select(
                by_purchase_date=False,
                after=report.start.timestamp(),
                before=report.end.timestamp(),
                now=report.created.timestamp(),
                marketplace_ids=report.marketplace_ids,
            )
            records = (self._store.record(*ref) for ref in refs)
            report.document = report_gzip(records, self._config.faults.messy_values)
        return report.document

    def _done_report(self, document_id: str) -> _Report:
        with self._lock:
            report = self._by_document.get(document_id)
        if report is None or self._status(report) != "DONE":
            raise not_found(f"Report document {document_id[:80]} was not found.")
        return report

    def _status(self, report: _Report) -> str:
        real_seconds = self._config.report_processing_seconds / self._config.time_scale
        elapsed = time.monotonic() - report.started_monotonic
        if elapsed < real_seconds / 3:
            return "IN_QUEUE"
        if elapsed < real_seconds:
            return "IN_PROGRESS"
        return self._config.faults.report_outcome or "DONE"

    def _marketplaces(self, value: object) -> tuple[str, ...]:
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_MARKETPLACES:
            raise invalid_input(f"marketplaceIds must be a list of 1 to {MAX_MARKETPLACES} marketplace ids.")
        for marketplace_id in value:
            if not isinstance(marketplace_id, str) or marketplace_id not in self._config.marketplace_ids:
                raise invalid_input(f"Invalid marketplaceId {str(marketplace_id)[:40]!r}: the seller is not registered there.")
        return tuple(value)


def _json_object(body: bytes) -> dict:
    """The request body as a JSON object of bounded nesting (400 InvalidInput otherwise)."""
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise invalid_input("The request body is not valid JSON.") from None
    if not isinstance(parsed, dict):
        raise invalid_input("The request body must be a JSON object.")
    if _depth(parsed) > MAX_JSON_DEPTH:
        raise invalid_input(f"The request body is nested more than {MAX_JSON_DEPTH} levels deep.")
    return parsed


def _depth(value: object) -> int:
    """Nesting depth of parsed JSON, walked without recursion (a hostile body may nest hundreds deep)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is not None:
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _time(spec: dict, name: str) -> datetime:
    value = spec[name]
    if not isinstance(value, str):
        raise invalid_input(f"{name} must be an ISO 8601 date-time string.")
    try:
        return parse_timestamp(name, value)
    except MwsError:
        raise invalid_input(f"Invalid {name} {value[:40]!r}: expected an ISO 8601 date-time.") from None

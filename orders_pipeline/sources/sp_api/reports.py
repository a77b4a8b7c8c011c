"""The bulk path: an orders report per ≤ 30 days (createReport, getReport until DONE, getReportDocument, download).

The document is fetched right before its download (its pre-signed URL expires after minutes) and downloaded
without the access token; GZIP documents are decompressed with a cap on the decompressed size.
"""

from __future__ import annotations

import gzip
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import count
from urllib.parse import quote, urlsplit

from orders_pipeline.sources.times import TWO_MINUTES, format_utc
from orders_pipeline.sources.http import NETWORK_ERRORS, is_loopback, short_reason
from orders_pipeline.sources.sp_api.client import SpApiOrdersClient
from orders_pipeline.sources.sp_api.errors import (
    SpApiConfigurationError,
    SpApiConnectionError,
    SpApiReportError,
    SpApiResponseFormatError,
)
from orders_pipeline.sources.sp_api.report_tsv import ReportTables, read_report

__all__ = ["REPORT_TYPE", "MAX_REPORT_SPAN", "OrdersReport", "SpApiReportsClient", "report_windows"]

log = logging.getLogger("orders_pipeline.sp_api")

REPORT_TYPE = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_LAST_UPDATE_GENERAL"
MAX_REPORT_SPAN = timedelta(days=30)
REPORTS_PATH = "/reports/2021-06-30"
DOWNLOAD_ATTEMPTS = 3
MAX_DOCUMENT_BYTES = 1024 * 1024 * 1024
"""The largest (decompressed) report document accepted: about 3 million item rows."""


@dataclass(frozen=True)
class OrdersReport:
    """One finished report: its window, its tables, and what it cost."""

    report_id: str
    data_start: datetime
    data_end: datetime
    tables: ReportTables
    waited_seconds: float  # time spent polling getReport until DONE
    document_bytes: int  # decompressed size


def report_windows(start: datetime, end: datetime, span: timedelta = MAX_REPORT_SPAN) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut into consecutive windows of at most `span` (30 days: Amazon's limit per report)."""
    windows = []
    while start < end:
        windows.append((start, min(start + span, end)))
        start = windows[-1][1]
    return windows


class SpApiReportsClient:
    """Orders reports for the seller and marketplaces of an `SpApiOrdersClient`, over its transport and throttle."""

    def __init__(self, orders: SpApiOrdersClient, *, poll_seconds: float = 15.0, max_wait_seconds: float = 3600.0) -> None:
        if poll_seconds <= 0 or max_wait_seconds <= 0:
            raise SpApiConfigurationError("poll_seconds and max_wait_seconds must be > 0")
        self._orders = orders
        self._transport = orders.transport
        self._poll_seconds = poll_seconds
        self._max_wait_seconds = max_wait_seconds

    def orders_reports(self, start: datetime, end: datetime) -> Iterator[OrdersReport]:
        """One finished report per ≤ 30-day window of ``[start, end)`` (end clamped to now − 2 minutes)."""
        end = min(end, self._orders.now() - TWO_MINUTES)
        for window_start, window_end in report_windows(start, end):
            yield self.orders_report(window_start, window_end)

    def orders_report(self, start: datetime, end: datetime) -> OrdersReport:
        """Create the report of orders last updated in ``[start, end)`` (≤ 30 days), wait for it, download and map it."""
        if end - start > MAX_REPORT_SPAN:
            raise ValueError(f"a report covers at most {MAX_REPORT_SPAN.days} days; split the range (report_windows)")
        report_id = self.create_report(start, end)
        document_id, waited = self.wait_for_report(report_id)
        tsv = self.download_document(document_id)
        tables = read_report(tsv, self._orders.marketplace_ids)
        log.info("report %s: %d orders, %d items in %.1fs of processing", report_id, tables.orders.num_rows,
                 tables.items.num_rows, waited)
        return OrdersReport(report_id, start, end, tables, waited, len(tsv))

    def create_report(self, start: datetime, end: datetime) -> str:
        """createReport for the window; the report id."""
        body = {
            "reportType": REPORT_TYPE,
            "marketplaceIds": list(self._orders.marketplace_ids),
            "dataStartTime": format_utc(start),
            "dataEndTime": format_utc(end),
        }
        payload, request_id = self._transport.call("createReport", "POST", f"{REPORTS_PATH}/reports", body=body)
        return _field(payload, "reportId", f"the createReport answer (x-amzn-RequestId {request_id})")

    def wait_for_report(self, report_id: str) -> tuple[str, float]:
        """Poll getReport until DONE: (its document id, seconds waited); CANCELLED, FATAL or too long raise."""
        started = self._transport.clock()
        path = f"{REPORTS_PATH}/reports/{quote(report_id, safe='')}"
        while True:
            payload, request_id = self._transport.call("getReport", "GET", path)
            where = f"the getReport answer for report {report_id} (x-amzn-RequestId {request_id})"
            status = _field(payload, "processingStatus", where)
            waited = self._transport.clock() - started
            if status == "DONE":
                return _field(payload, "reportDocumentId", where), waited
            if status in ("CANCELLED", "FATAL"):
                raise SpApiReportError(
                    f"orders report {report_id} ended {status} after {waited:.0f}s (x-amzn-RequestId {request_id}): "
                    + ("Amazon cancelled it (no data, or a duplicate request); nothing was written -> run the range again"
                       if status == "CANCELLED" else
                       "Amazon could not build it; nothing was written -> run the range again later, or in shorter ranges")
                )
            if status not in ("IN_QUEUE", "IN_PROGRESS"):
                raise SpApiResponseFormatError(f"{where}: unknown processingStatus {status!r}")
            if waited + self._poll_seconds > self._max_wait_seconds:
                raise SpApiReportError(
                    f"orders report {report_id} still {status} after {waited:.0f}s; gave up -> run the range again later"
                )
            self._transport.sleep(self._poll_seconds)

    def download_document(self, document_id: str) -> bytes:
        """The report's TSV bytes: getReportDocument, then its pre-signed URL downloaded without the token.

        A download that fails in transit (connection lost, 5xx, a link expired meanwhile) asks for a fresh link and
        tries again, DOWNLOAD_ATTEMPTS times at most: the report took minutes to build, one hiccup should not lose it.
        """
        for attempt in count(1):
            url, algorithm = self._document_link(document_id)
            try:
                content = self._download(url)
            except _TransientDownloadError as error:
                if attempt == DOWNLOAD_ATTEMPTS:
                    raise SpApiConnectionError(
                        f"the report document download failed {attempt} times, last: {error} -> run the range again"
                    ) from None
                log.warning("report document %s: download failed (%s); retrying with a fresh link", document_id, error)
                self._transport.backoff(attempt)
                continue
            return _gunzip(content) if algorithm == "GZIP" else content

    def _document_link(self, document_id: str) -> tuple[str, str | None]:
        """getReportDocument: the document's pre-signed URL (https, or http on loopback) and its compression."""
        path = f"{REPORTS_PATH}/documents/{quote(document_id, safe='')}"
        payload, request_id = self._transport.call("getReportDocument", "GET", path)
        where = f"the getReportDocument answer (x-amzn-RequestId {request_id})"
        url = _field(payload, "url", where)
        parts = urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback((parts.hostname or "").lower())):
            raise SpApiResponseFormatError(f"{where}: the document URL is not https; refused")
        algorithm = payload.get("compressionAlgorithm")
        if algorithm not in (None, "GZIP"):
            raise SpApiResponseFormatError(f"{where}: unknown compressionAlgorithm {algorithm!r}")
        return url, algorithm

    def _download(self, url: str) -> bytes:
        """The bytes at a pre-signed URL; trouble worth another try raises `_TransientDownloadError`."""
        host = urlsplit(url).hostname or ""
        proxies = {"http": None, "https": None} if is_loopback(host.lower()) else None
        try:
            response = self._transport.session.get(url, timeout=300, allow_redirects=False, proxies=proxies, stream=True)
            content = self._transport.read_capped(response, "the report document download", MAX_DOCUMENT_BYTES)
        except NETWORK_ERRORS as exc:
            raise _TransientDownloadError(f"cannot reach {host}: {short_reason(exc)}") from None
        if response.status_code == 403 or response.status_code >= 500:  # 403: the pre-signed URL expired
            raise _TransientDownloadError(f"{host} answered HTTP {response.status_code}")
        if response.status_code != 200:
            raise SpApiResponseFormatError(
                f"the report document download answered HTTP {response.status_code} -> run the range again"
            )
        return content


class _TransientDownloadError(Exception):
    """A document download that failed in a way a fresh link and another try can fix."""


def _gunzip(content: bytes) -> bytes:
    """Decompress a GZIP document, refusing one that expands past MAX_DOCUMENT_BYTES (a gzip bomb)."""
    out = io.BytesIO()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(content)) as stream:
            while chunk := stream.read(1 << 20):
                if out.tell() + len(chunk) > MAX_DOCUMENT_BYTES:
                    raise SpApiResponseFormatError(f"the report document expands past {MAX_DOCUMENT_BYTES:,} bytes; refused")
                out.write(chunk)
    except (OSError, EOFError) as error:
        raise SpApiResponseFormatError(f"the report document is not valid GZIP ({error})") from None
    return out.getvalue()


def _field(payload: object, name: str, where: str) -> str:
    value = payload.get(name) if isinstance(payload, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise SpApiResponseFormatError(f"{where} has no {name}")
    return value.strip()

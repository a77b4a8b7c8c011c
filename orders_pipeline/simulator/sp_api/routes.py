"""One SP-API request end to end: route, faults, access token, usage plan, then the operation, as JSON."""

from __future__ import annotations

import json
import re
import sys
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Mapping
from urllib.parse import parse_qsl

from ..config import SimulatorConfig
from ..faults import injected_fault
from ..orders import OrderStore
from ..service import Reply
from ..stats import SimulatorStats
from .errors import SpApiError, quota_exceeded
from .lwa import LwaError, TokenIssuer
from .reports import ReportDesk
from .search import OrdersSearch
from .usage_plans import rate_limit_header, usage_plan_throttle

MAX_BODY_BYTES = 64 * 1024
TOKEN_PATH = "/auth/o2/token"
DOCUMENTS_PATH = "/report-documents/"
_PREFIXES = (TOKEN_PATH, "/orders/2026-01-01/", "/reports/2021-06-30/", DOCUMENTS_PATH)
_JSON = "application/json"
_FORM = "application/x-www-form-urlencoded"
_RATE_LIMITED_STATUSES = (200, 202, 400, 404)  # the answers Amazon's models give x-amzn-RateLimit-Limit


@dataclass(frozen=True)
class SpRequest:
    """An HTTP request as the SP-API face sees it; `body` is None when it was too large to read."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes | None


Handler = Callable[[SpRequest, dict[str, str], re.Match, datetime], tuple[int, dict]]


def is_sp_api_path(path: str) -> bool:
    """Whether a request path belongs to the SP-API face (the rest is MWS)."""
    return path == TOKEN_PATH or path.startswith(_PREFIXES[1:])


class SpApiService:
    """The simulated SP-API endpoints for one seller, sharing the MWS face's order store, stats and clock."""

    def __init__(self, config: SimulatorConfig, store: OrderStore, stats: SimulatorStats, now: Callable[[], datetime]) -> None:
        self.config = config
        self.stats = stats
        self.now = now
        self.tokens = TokenIssuer(config.sp_api_credentials, config.sp_api_token_seconds, config.time_scale)
        self.throttle = usage_plan_throttle(config)
        self.orders = OrdersSearch(config, store)
        self.reports = ReportDesk(config, store)
        self.base_url = ""  # set by the server once it is bound; report document links point back at it
        self._routes: list[tuple[str, re.Pattern, str, Handler]] = [
            ("GET", re.compile(r"/orders/2026-01-01/orders"), "searchOrders", self._search_orders),
            ("GET", re.compile(r"/orders/2026-01-01/orders/([^/]+)"), "getOrder", self._get_order),
            ("POST", re.compile(r"/reports/2021-06-30/reports"), "createReport", self._create_report),
            ("GET", re.compile(r"/reports/2021-06-30/reports/([^/]+)"), "getReport", self._get_report),
            ("GET", re.compile(r"/reports/2021-06-30/documents/([^/]+)"), "getReportDocument", self._get_report_document),
        ]

    def handle(self, request: SpRequest) -> Reply | None:
        """Answer one request (None: close the connection without a response)."""
        if request.path == TOKEN_PATH:
            return self._token(request)
        if request.path.startswith(DOCUMENTS_PATH):
            return self._download(request)
        return self._operation(request)

    def _token(self, request: SpRequest) -> Reply:
        self.stats.count_request("LwaToken")
        request_id = str(uuid.uuid4())
        try:
            if request.method != "POST":
                raise LwaError(405, "invalid_request", "The token endpoint accepts POST only")
            if request.body is None:
                raise LwaError(413, "invalid_request", f"The request body exceeds {MAX_BODY_BYTES} bytes")
            if _content_type(request) != _FORM:
                raise LwaError(400, "invalid_request", f"The request body must be {_FORM}")
            status, body = 200, self.tokens.exchange(dict(parse_qsl(request.body.decode("utf-8", "replace"))))
        except LwaError as error:
            self.stats.count_error(error.error)
            status, body = error.status, error.body()
        return _json_reply(status, body, request_id)

    def _operation(self, request: SpRequest) -> Reply | None:
        operation, handler, match = self._route(request)
        number = self.stats.count_request(operation)
        request_id = str(uuid.uuid4())
        rate_limited = False
        try:
            self._inject_faults(number)
            if handler is None or match is None:
                raise SpApiError(404, "NotFound", f"No resource at {request.method} {request.path[:200]}.")
            if request.body is None:
                raise SpApiError(413, "RequestEntityTooLarge", f"The request body exceeds {MAX_BODY_BYTES} bytes.")
            self._authenticate(request, number)
            if not self.throttle.acquire(operation, self.now()).allowed:
                raise quota_exceeded()
            rate_limited = True
            status, body = handler(request, _query(request.query), match, self.now())
        except _ConnectionReset:
            return None
        except SpApiError as error:
            self.stats.count_error(error.code)
            status, body = error.status, error.body()
        except Exception:  # a simulator bug must still look like a server error to the client
            traceback.print_exc(file=sys.stderr)
            error = SpApiError(500, "InternalFailure", "We encountered an internal error. Please try again.")
            self.stats.count_error(error.code)
            status, body = error.status, error.body()
        reply = _json_reply(status, body, request_id)
        if rate_limited and status in _RATE_LIMITED_STATUSES:
            reply.headers["x-amzn-RateLimit-Limit"] = rate_limit_header(operation)
        return reply

    def _download(self, request: SpRequest) -> Reply:
        """A pre-signed document link: no access token, gzip bytes (an expired link is refused as S3 does)."""
        self.stats.count_request("downloadReportDocument")
        if self.stats.requests_by_action["downloadReportDocument"] <= self.config.faults.failed_downloads:
            self.stats.count_fault()
            return Reply(503, b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
                         {"Content-Type": "application/xml"})
        expires = _query(request.query).get("expires", "")
        if request.method != "GET" or not expires.isdigit() or int(expires) < time.time():
            self.stats.count_error("AccessDenied")
            return Reply(403, b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                         {"Content-Type": "application/xml"})
        try:
            document = self.reports.document(request.path[len(DOCUMENTS_PATH):])
        except SpApiError as error:
            self.stats.count_error(error.code)
            return Reply(404, b"<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>",
                         {"Content-Type": "application/xml"})
        return Reply(200, document, {"Content-Type": "text/plain; charset=UTF-8"})

    def _route(self, request: SpRequest) -> tuple[str, Handler | None, re.Match | None]:
        for method, pattern, operation, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match is not None and method == request.method:
                return operation, handler, match
        return "unknownSpApiOperation", None, None

    def _inject_faults(self, number: int) -> None:
        fault = injected_fault(number, self.config.faults, self.stats)
        if fault == "reset":
            raise _ConnectionReset()
        if fault == "internal":
            raise SpApiError(500, "InternalFailure", "We encountered an internal error. Please try again.")
        if fault == "unavailable":
            raise SpApiError(503, "ServiceUnavailable", "Service temporarily unavailable. Please try again.")

    def _authenticate(self, request: SpRequest, number: int) -> None:
        token = request.headers.get("x-amz-access-token")
        if number in self.config.faults.expire_token_request_numbers:
            self.stats.count_fault()
            self.tokens.expire(token)
        self.tokens.check(token)

    def _search_orders(self, request: SpRequest, params: dict[str, str], match: re.Match, now: datetime) -> tuple[int, dict]:
        return 200, self.orders.search_orders(params, now)

    def _get_order(self, request: SpRequest, params: dict[str, str], match: re.Match, now: datetime) -> tuple[int, dict]:
        return 200, self.orders.get_order(match.group(1), params, now)


    def _create_report(self, request: SpRequest, params: dict[str, str], match: re.Match, now: datetime) -> tuple[int, dict]:
        if _content_type(request) != _JSON:
            raise SpApiError(415, "UnsupportedMediaType", f"The request body must be {_JSON}.")
        return 202, self.reports.create(request.body or b"", now)

    def _get_report(self, request: SpRequest, params: dict[str, str], match: re.Match, now: datetime) -> tuple[int, dict]:
        return 200, self.reports.describe(match.group(1))

    def _get_report_document(self, request: SpRequest, params: dict[str, str], match: re.Match, now: datetime) -> tuple[int, dict]:
        return 200, self.reports.document_link(match.group(1), self.base_url)


class _ConnectionReset(Exception):
    """Internal signal: this request is answered by closing the connection."""


def _query(query: str) -> dict[str, str]:
    """Query parameters; a repeated one (`marketplaceIds=A&marketplaceIds=B`) joins into a comma list."""
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        params[key] = f"{params[key]},{value}" if key in params else value
    return params


def _content_type(request: SpRequest) -> str:
    return (request.headers.get("Content-Type") or "").split(";")[0].strip().lower()


def _json_reply(status: int, body: dict, request_id: str) -> Reply:
    payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Reply(status, payload, {"Content-Type": _JSON, "x-amzn-RequestId": request_id})

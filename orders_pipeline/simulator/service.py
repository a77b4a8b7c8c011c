"""One request end to end: faults, address, authentication, throttling, then the operation."""

from __future__ import annotations

import sys
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Mapping

from .config import SimulatorConfig
from .errors import MwsError, invalid_parameter, request_throttled
from .faults import injected_fault
from .operations import OrdersApi
from .orders import OrderStore
from .paging import TokenStore
from .params import parse_timestamp, required
from .signature import is_supported_method, signature_matches
from .stats import SimulatorStats
from .throttle import FAMILY_OF_ACTION, QuotaSnapshot, Throttle
from .xml_writer import error_xml, iso_millis, success_xml

ORDERS_PATH = "/Orders/2013-09-01"
API_VERSION = "2013-09-01"
TIMESTAMP_TOLERANCE = timedelta(minutes=15)
_REQUIRED = ("AWSAccessKeyId", "Action", "SellerId", "Signature", "SignatureMethod", "SignatureVersion", "Timestamp", "Version")


@dataclass
class Reply:
    """An HTTP answer; None in its place means: drop the connection without answering."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class _ConnectionReset(Exception):
    """Internal signal: this request is answered by closing the connection."""


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class MwsService:
    """The simulated MWS Orders endpoint, independent of HTTP plumbing."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.stats = SimulatorStats()
        self.store = OrderStore(config.seed, config.orders_per_day, config.marketplace_ids, config.restated_share)
        self.throttle = Throttle(config.time_scale, config.throttling, config.faults.external_throttle, config.seed)
        self.api = OrdersApi(config, self.store, TokenStore())
        self._clock = config.clock or _utc_now

    def now(self) -> datetime:
        """The server's notion of now (UTC, aware; a naive clock value is taken as UTC)."""
        now = self._clock()
        return now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)

    def handle(self, method: str, host: str, path: str, params: Mapping[str, str]) -> Reply | None:
        """Answer one request (None: close the connection without a response)."""
        action = params.get("Action", "")
        number = self.stats.count_request(action)
        family = FAMILY_OF_ACTION.get(action)
        request_id = str(uuid.uuid4())
        quota: QuotaSnapshot | None = None
        try:
            self._inject_faults(number)
            if path != ORDERS_PATH:
                raise MwsError(404, "InvalidAddress", f"The address {path} is not valid for this endpoint.")
            self._authenticate(method, host, path, params)
            if family is None:
                raise invalid_parameter(f"Invalid Action: {action}. Not a valid Orders {API_VERSION} operation.")
            quota = self.throttle.acquire(family, self.now())
            if not quota.allowed:
                raise request_throttled()
            body = self.api.handlers[action](params, quota.now)
            reply = Reply(200, success_xml(action, body, request_id).encode())
        except _ConnectionReset:
            return None
        except MwsError as error:
            reply = self._error_reply(error, request_id)
        except Exception:  # a simulator bug must still look like a server error to the client
            traceback.print_exc(file=sys.stderr)
            reply = self._error_reply(
                MwsError(500, "InternalError", "We encountered an internal error. Please try again.", "Receiver"),
                request_id,
            )
        if family is not None and quota is None:
            quota = self.throttle.peek(family, self.now())
        reply.headers.update(
            {
                "Content-Type": "text/xml",
                "x-mws-request-id": request_id,
                "x-mws-timestamp": iso_millis(quota.now if quota else self.now()),
            }
        )
        if quota is not None:
            reply.headers.update(quota.headers())
        return reply

    def _error_reply(self, error: MwsError, request_id: str) -> Reply:
        self.stats.count_error(error.code)
        tag = "RequestID" if error.code == "RequestThrottled" else "RequestId"  # as Amazon's throttle answer spells it
        return Reply(error.status, error_xml(error.error_type, error.code, error.message, request_id, tag).encode())

    def _inject_faults(self, number: int) -> None:
        fault = injected_fault(number, self.config.faults, self.stats)
        if fault == "reset":
            raise _ConnectionReset()
        if fault == "internal":
            raise MwsError(500, "InternalError", "We encountered an internal error. Please try again.", "Receiver")
        if fault == "unavailable":
            raise MwsError(503, "ServiceUnavailable", "Service temporarily unavailable. Please try again.", "Receiver")

    def _authenticate(self, method: str, host: str, path: str, params: Mapping[str, str]) -> None:
        for name in _REQUIRED:
            required(params, name)
        credentials = self.config.credentials
        if params["AWSAccessKeyId"] != credentials.access_key_id:
            raise MwsError(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
        if params["SignatureVersion"] != "2":
            raise invalid_parameter(f"Invalid SignatureVersion: {params['SignatureVersion']}. Must be 2.")
        if not is_supported_method(params["SignatureMethod"]):
            raise invalid_parameter(f"Invalid SignatureMethod: {params['SignatureMethod']}. Use HmacSHA256 or HmacSHA1.")
        if not signature_matches(credentials.secret_key, method, host, path, params):
            raise MwsError(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
            )
        sent_at = parse_timestamp("Timestamp", params["Timestamp"])
        # a client whose clock agrees with the simulated clock (SimulatorConfig.clock) is in time too
        if min(abs(_utc_now() - sent_at), abs(self.now() - sent_at)) > TIMESTAMP_TOLERANCE:
            raise invalid_parameter(
                f"Request has expired: Timestamp {params['Timestamp']} is more than 15 minutes away from the server time."
            )
        if params["Version"] != API_VERSION:
            raise invalid_parameter(f"Invalid Version: {params['Version']}. This endpoint serves {API_VERSION}.")
        if params["SellerId"] != credentials.seller_id:
            raise MwsError(401, "AccessDenied", f"Access to Orders.{params['Action']} is denied")
        sent_token = params.get("MWSAuthToken") or None
        if sent_token != credentials.auth_token:
            message = "Missing required MWSAuthToken for Seller." if sent_token is None else "Access denied: invalid MWSAuthToken."
            raise MwsError(401, "AccessDenied", message)

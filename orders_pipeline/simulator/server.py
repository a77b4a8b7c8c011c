"""The loopback HTTP server: MwsSimulator (start/stop in a daemon thread) and serve_forever for the CLI."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from .config import SimulatorConfig
from .orders import OrderRecord
from .service import MwsService, Reply
from .sp_api import SpApiService, is_sp_api_path
from .sp_api.routes import MAX_BODY_BYTES, SpRequest
from .stats import SimulatorStats

_FORM = "application/x-www-form-urlencoded"


class _Handler(BaseHTTPRequestHandler):
    """Turns HTTP requests into MwsService calls."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small responses on kept-alive connections would otherwise wait ~40 ms for ACKs

    def version_string(self) -> str:
        """Amazon answers with a bare `Server: Server` header."""
        return "Server"

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._serve()

    def do_POST(self) -> None:  # noqa: N802
        self._serve()

    def log_message(self, format: str, *args: object) -> None:  # silence per-request logging
        return

    def _serve(self) -> None:
        url = urlsplit(self.path)
        declared = self.headers.get("Content-Length", "0").strip()
        length = int(declared) if declared.isdigit() else 0
        if is_sp_api_path(url.path):
            self._reply(self._sp_api_reply(url.path, url.query, length))
            return
        service: MwsService = self.server.service  # type: ignore[attr-defined]
        body = self.rfile.read(length) if length else b""
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        content_type = (self.headers.get("Content-Type") or _FORM).split(";")[0].strip().lower()
        if body and content_type == _FORM:
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        self._reply(service.handle(self.command, self.headers.get("Host", ""), url.path, params))

    def _sp_api_reply(self, path: str, query: str, length: int) -> Reply | None:
        """Answer on the SP-API face; a body over the limit is not read, and the connection closes after the answer."""
        body: bytes | None = None
        if length <= MAX_BODY_BYTES:
            body = self.rfile.read(length) if length else b""
        else:
            self.close_connection = True
        sp_api: SpApiService = self.server.sp_api  # type: ignore[attr-defined]
        return sp_api.handle(SpRequest(self.command, path, query, self.headers, body))

    def _reply(self, reply: Reply | None) -> None:
        if reply is None:
            self.close_connection = True
            return
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, port: int, service: MwsService, sp_api: SpApiService) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.service = service
        self.sp_api = sp_api


class MwsSimulator:
    """MWS Orders 2013-09-01 and SP-API (LWA, Orders v2026-01-01, Reports) on 127.0.0.1, one order timeline."""

    def __init__(self, config: SimulatorConfig | None = None, port: int = 0) -> None:
        self.config = config or SimulatorConfig()
        self._port = port
        self._service = MwsService(self.config)
        self._sp_api = SpApiService(self.config, self._service.store, self._service.stats, self._service.now)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def stats(self) -> SimulatorStats:
        """Counters of requests, errors, throttles and faults."""
        return self._service.stats

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:8123: the MWS endpoint (clients append /Orders/2013-09-01) and SP_API_ENDPOINT."""
        if self._server is None:
            raise RuntimeError("MwsSimulator is not running; call start() first")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> str:
        """Bind and serve in a daemon thread; returns the base URL."""
        if self._server is None:
            self._server = _Server(self._port, self._service, self._sp_api)
            self._thread = threading.Thread(target=self._server.serve_forever, name="mws-simulator", daemon=True)
            self._thread.start()
            self._sp_api.base_url = self.url
        return self.url

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = None
            self._thread = None

    def __enter__(self) -> "MwsSimulator":
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def expected_orders(self, updated_after: datetime, updated_before: datetime) -> list[dict]:
        """Ground truth for both faces: the current version (as of the clock) of every order last updated in [after, before)."""
        store = self._service.store
        refs = store.select(
            by_purchase_date=False,
            after=updated_after.timestamp(),
            before=updated_before.timestamp(),
            now=self._service.now().timestamp(),
        )
        return [_as_dict(store.record(*ref)) for ref in refs]


def _when(epoch: int | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)


def _amount(cents: int | None) -> Decimal | None:
    return None if cents is None else Decimal(cents).scaleb(-2)


def _as_dict(order: OrderRecord) -> dict:
    return {
        "amazon_order_id": order.amazon_order_id,
        "purchase_date": _when(order.purchase_date),
        "last_update_date": _when(order.last_update_date),
        "order_status": order.order_status,
        "marketplace_id": order.marketplace_id,
        "sales_channel": order.sales_channel,
        "fulfillment_channel": order.fulfillment_channel,
        "ship_service_level": order.ship_service_level,
        "shipment_service_level_category": order.shipment_service_level_category,
        "order_total_amount": _amount(order.order_total),
        "currency": order.currency,
        "number_of_items_shipped": order.number_of_items_shipped,
        "number_of_items_unshipped": order.number_of_items_unshipped,
        "latest_ship_date": _when(order.latest_ship_date),
        "is_prime": order.is_prime,
        "is_business_order": order.is_business_order,
        "items": [
            {
                "order_item_id": item.order_item_id,
                "seller_sku": item.seller_sku,
                "asin": item.asin,
                "title": item.title,
                "quantity_ordered": item.quantity_ordered,
                "quantity_shipped": item.quantity_shipped,
                "item_price_amount": _amount(item.item_price),
                "item_tax_amount": _amount(item.item_tax),
                "promotion_discount_amount": _amount(item.promotion_discount),
            }
            for item in order.items
        ],
    }


def serve_forever(config: SimulatorConfig, port: int) -> None:
    """Run the simulator in the foreground until Ctrl-C, printing how to point the pipeline at it."""
    simulator = MwsSimulator(config, port)
    url = simulator.start()
    credentials = config.credentials
    lines = [
        f"MWS Orders simulator listening on {url}/Orders/2013-09-01",
        "Point the pipeline at it with:",
        f"  export MWS_ENDPOINT={url}",
        f"  export MWS_ACCESS_KEY_ID={credentials.access_key_id}",
        f"  export MWS_SECRET_KEY={credentials.secret_key}",
        f"  export MWS_SELLER_ID={credentials.seller_id}",
        f"  export MWS_MARKETPLACE_IDS={','.join(config.marketplace_ids)}",
    ]
    if credentials.auth_token:
        lines.append(f"  export MWS_AUTH_TOKEN={credentials.auth_token}")
    sp_api = config.sp_api_credentials
    lines += [
        f"SP-API simulator (Orders v2026-01-01, Reports 2021-06-30) listening on {url}, LWA on {url}/auth/o2/token",
        "Point the pipeline at it with:",
        "  export ORDERS_SOURCE=sp-api",
        f"  export SP_API_ENDPOINT={url}",
        f"  export LWA_TOKEN_URL={url}/auth/o2/token",
        f"  export LWA_APP_ID={sp_api.app_id}",
        f"  export LWA_CLIENT_SECRET={sp_api.client_secret}",
        f"  export SP_API_REFRESH_TOKEN='{sp_api.refresh_token}'",
        f"  export SP_API_MARKETPLACE_IDS={','.join(config.marketplace_ids)}",
    ]
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()

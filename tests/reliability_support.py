"""Shared by the reliability and security tests: a tunable MWS resource, Dagster runs and canned HTTP servers."""

from __future__ import annotations

import os
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Optional

import dagster as dg

from orders_pipeline.defs.sp_api_resource import SpApiResource
from orders_pipeline.defs.assets.raw import mws_orders
from orders_pipeline.sources.mws.client import MwsOrdersClient
from orders_pipeline.defs.resources import MwsResource

REPO = Path(__file__).resolve().parents[1]
NO_STEP_RETRIES = {"execution": {"config": {"retries": {"disabled": {}}}}}

#: clocks the TunedMws resource can be pointed at by name (a resource's config must stay plain values)
CLOCKS: dict[str, Callable[[], datetime]] = {}


class TunedMws(MwsResource):
    """The real resource with test-speed client knobs: a short read timeout, fast backoff, a named clock."""

    timeout: float = 30.0
    backoff_base: float = 0.5
    clock: Optional[str] = None

    def _client(self, endpoint, credentials, marketplaces) -> MwsOrdersClient:
        extra = {"now": CLOCKS[self.clock]} if self.clock else {}
        return MwsOrdersClient(
            endpoint, credentials, marketplaces, buyer_email_salt=self.buyer_email_salt,
            timeout=self.timeout, backoff_base=self.backoff_base, **extra,
        )


class MovableClock:
    """A wall clock the test sets; shared by the simulator (server time) and the client (its `now`)."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


def materialize(resource, day, **kwargs) -> dg.ExecuteInProcessResult:
    """One partition of the raw assets through Dagster, without step retries (failures surface at once)."""
    kwargs.setdefault("run_config", NO_STEP_RETRIES)
    kwargs.setdefault("raise_on_error", False)
    return dg.materialize([mws_orders], partition_key=day.isoformat(), resources={"mws": resource, "sp_api": SpApiResource()}, **kwargs)


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    """The description of the run's one step failure."""
    failures = [event for event in result.all_events if event.is_step_failure]
    assert len(failures) == 1, failures
    return failures[0].step_failure_data.user_failure_data.description


def materialization_metadata(result: dg.ExecuteInProcessResult) -> dict:
    """{asset key: {name: value}} of the run's materializations."""
    return {
        m.asset_key.to_user_string(): {name: value.value for name, value in m.metadata.items()}
        for m in result.asset_materializations_for_node("mws_orders")
    }


class CannedServer:
    """A loopback HTTP server answering every request with one fixed (status, headers, body) or a body generator."""

    def __init__(self, body: bytes | Callable[[], object] = b"", status: int = 200, headers: dict | None = None) -> None:
        self.requests = 0
        self.bytes_sent = 0
        canned = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                return

            def do_POST(self) -> None:  # noqa: N802
                canned.requests += 1
                length = int(self.headers.get("Content-Length", "0") or 0)
                self.rfile.read(length)
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                if callable(body):
                    self.send_header("Connection", "close")
                    self.end_headers()
                    try:
                        for chunk in body():
                            self.wfile.write(chunk)
                            canned.bytes_sent += len(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "CannedServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def clean_env(**overrides: str) -> dict[str, str]:
    """The current environment without MWS_/DAGSTER_/ORDERS_ settings, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MWS_", "DAGSTER_", "ORDERS_"))}
    env.update(overrides)
    return env
